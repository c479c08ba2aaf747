"""Extraction helpers: every documented time format, Chinese counts, and JSON paths (including their errors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from monitor.extract import get_path, iter_path, parse_count, parse_time, split_path

SHANGHAI = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # Friday 20 November 2026, 12:00 in Beijing


def bj(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    """A Beijing wall-clock time."""
    return datetime(year, month, day, hour, minute, second, tzinfo=SHANGHAI)


# -- parse_time -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    # epoch seconds and milliseconds, as numbers and as text
    (1485532859, datetime(2017, 1, 27, 16, 0, 59, tzinfo=UTC)),
    (1485532859000, datetime(2017, 1, 27, 16, 0, 59, tzinfo=UTC)),
    (1485532859.5, datetime(2017, 1, 27, 16, 0, 59, 500000, tzinfo=UTC)),
    ("1485532859", datetime(2017, 1, 27, 16, 0, 59, tzinfo=UTC)),
    ("1485532859123", datetime(2017, 1, 27, 16, 0, 59, 123000, tzinfo=UTC)),
    # ISO 8601 with and without a zone (without: the source's zone)
    ("2026-11-19T14:22:05.117Z", datetime(2026, 11, 19, 14, 22, 5, 117000, tzinfo=UTC)),
    ("2026-11-19T14:22:05+08:00", bj(2026, 11, 19, 14, 22, 5)),
    ("2026-11-19 14:22:05+0800", bj(2026, 11, 19, 14, 22, 5)),
    ("2026-11-19 14:22:05 +0000", datetime(2026, 11, 19, 14, 22, 5, tzinfo=UTC)),
    ("2026-11-19 14:22:05 UTC", datetime(2026, 11, 19, 14, 22, 5, tzinfo=UTC)),
    ("2026-11-19T14:22:05-05:00", datetime(2026, 11, 19, 19, 22, 5, tzinfo=UTC)),
    ("2026-11-19T14:22:05", bj(2026, 11, 19, 14, 22, 5)),
    ("2026-11-19", bj(2026, 11, 19, 0, 0)),
    ("20261119T142205Z", datetime(2026, 11, 19, 14, 22, 5, tzinfo=UTC)),
    # RFC 822 (RSS)
    ("Fri, 20 Nov 2026 08:00:00 +0800", bj(2026, 11, 20, 8, 0)),
    ("Fri, 20 Nov 2026 00:00:00 GMT", datetime(2026, 11, 20, tzinfo=UTC)),
    # Weibo's API
    ("Sat Jan 28 00:00:59 +0800 2017", bj(2017, 1, 28, 0, 0, 59)),
    ("Fri Nov 20 11:32:07 +0800 2026", datetime(2026, 11, 20, 3, 32, 7, tzinfo=UTC)),
    ("Sat Jan 28 00:00:59 -0500 2017", datetime(2017, 1, 28, 5, 0, 59, tzinfo=UTC)),
    # Chinese dates, with the prefixes forums put before them
    ("2024-12-05 08:00", bj(2024, 12, 5, 8, 0)),
    ("2024/12/05 08:00:30", bj(2024, 12, 5, 8, 0, 30)),
    ("2024.12.5", bj(2024, 12, 5, 0, 0)),
    ("2024年12月5日", bj(2024, 12, 5, 0, 0)),
    ("2024年12月5日 08：30", bj(2024, 12, 5, 8, 30)),
    ("发表于 2024-12-05 08:00", bj(2024, 12, 5, 8, 0)),
    ("发布时间：2024-12-05", bj(2024, 12, 5, 0, 0)),
    ("投诉时间: 2024-12-05 08:00", bj(2024, 12, 5, 8, 0)),
    # month-day: this year, or last year when this year's would be in the future
    ("11-18", bj(2026, 11, 18, 0, 0)),
    ("11-18 09:15", bj(2026, 11, 18, 9, 15)),
    ("11月18日 09:15", bj(2026, 11, 18, 9, 15)),
    ("12-05 08:00", bj(2025, 12, 5, 8, 0)),
    ("11-21", bj(2026, 11, 21, 0, 0)),  # tomorrow at most: a site clock a little ahead, not last year
    # a clock time alone: today
    ("08:30", bj(2026, 11, 20, 8, 30)),
    ("12:05", bj(2026, 11, 20, 12, 5)),  # five minutes ahead: a clock skew, still today
    # relative times
    ("刚刚", NOW),
    ("just now", NOW),
    ("Just now", NOW),
    ("30秒前", NOW - timedelta(seconds=30)),
    ("5分钟前", NOW - timedelta(minutes=5)),
    ("5分前", NOW - timedelta(minutes=5)),
    ("半小时前", NOW - timedelta(minutes=30)),
    ("3小时前", NOW - timedelta(hours=3)),
    ("3个小时前", NOW - timedelta(hours=3)),
    ("2天前", NOW - timedelta(days=2)),
    ("1周前", NOW - timedelta(weeks=1)),
    ("2星期前", NOW - timedelta(weeks=2)),
    ("3个月前", NOW - timedelta(days=90)),
    ("1年前", NOW - timedelta(days=365)),
    ("45 seconds ago", NOW - timedelta(seconds=45)),
    ("5 minutes ago", NOW - timedelta(minutes=5)),
    ("1 min ago", NOW - timedelta(minutes=1)),
    ("2 hours ago", NOW - timedelta(hours=2)),
    ("3 days ago", NOW - timedelta(days=3)),
    ("2 weeks ago", NOW - timedelta(weeks=2)),
    ("今天 08:00", bj(2026, 11, 20, 8, 0)),
    ("今天", bj(2026, 11, 20, 0, 0)),
    ("昨天 12:30", bj(2026, 11, 19, 12, 30)),
    ("昨天12:30:15", bj(2026, 11, 19, 12, 30, 15)),
    ("前天 23:59", bj(2026, 11, 18, 23, 59)),
    ("前天", bj(2026, 11, 18, 0, 0)),
])
def test_parse_time_formats(value: Any, expected: datetime) -> None:
    """Each documented format reads to the right instant, aware."""
    got = parse_time(value, NOW, SHANGHAI)
    assert got is not None and got.tzinfo is not None
    assert got == expected


@pytest.mark.parametrize("value", [
    None, "", "   ", "abc", "上古时期", "2024-13-45", "2024-02-30 08:00", "2月30日", "25:00", "昨天 25:61",
    "Sat Feb 30 00:00:59 +0800 2017", "Sat Foo 28 00:00:59 +0800 2017", "2026-11-19T14:22:05+25:00",
    "99999999天前", "999999999999周前", 0, -5, float("nan"), float("inf"), 1e20, True, False, [], {},
])
def test_parse_time_bad_input_is_none(value: Any) -> None:
    """Unreadable or impossible times are None, never an exception or 1970."""
    assert parse_time(value, NOW, SHANGHAI) is None


def test_month_day_read_on_new_years_day_is_last_year() -> None:
    """"12-31 23:59" read at 00:30 on 1 January is the day before, not eleven months ahead."""
    new_year = bj(2027, 1, 1, 0, 30).astimezone(UTC)
    assert parse_time("12-31 23:59", new_year, SHANGHAI) == bj(2026, 12, 31, 23, 59)
    assert parse_time("12月31日", new_year, SHANGHAI) == bj(2026, 12, 31, 0, 0)
    assert parse_time("01-01 00:10", new_year, SHANGHAI) == bj(2027, 1, 1, 0, 10)


def test_time_only_in_the_future_means_yesterday() -> None:
    """"23:50" read at 00:10 was written yesterday; "00:05" at 00:10 is today."""
    just_after_midnight = bj(2026, 11, 21, 0, 10).astimezone(UTC)
    assert parse_time("23:50", just_after_midnight, SHANGHAI) == bj(2026, 11, 20, 23, 50)
    assert parse_time("00:05", just_after_midnight, SHANGHAI) == bj(2026, 11, 21, 0, 5)


def test_day_words_use_the_sources_zone_not_utc() -> None:
    """At 01:00 Beijing (17:00 UTC the day before), 昨天 is the Beijing yesterday."""
    now = bj(2026, 11, 21, 1, 0).astimezone(UTC)
    assert parse_time("昨天 12:30", now, SHANGHAI) == bj(2026, 11, 20, 12, 30)
    assert parse_time("昨天 12:30", now, UTC) == datetime(2026, 11, 19, 12, 30, tzinfo=UTC)


def test_datetimes_pass_through() -> None:
    """An aware datetime is returned as is; a naive one is placed in the zone."""
    aware = datetime(2026, 1, 2, 3, 4, tzinfo=timezone(timedelta(hours=-3)))
    assert parse_time(aware, NOW, SHANGHAI) is aware
    assert parse_time(datetime(2026, 1, 2, 3, 4), NOW, SHANGHAI) == bj(2026, 1, 2, 3, 4)


# -- parse_count ------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "expected"), [
    ("1.2万", 12_000), ("10万+", 100_000), ("1.5亿", 150_000_000), ("2千", 2_000), ("3,456", 3_456),
    ("1,234.5万", 12_345_000), ("评论 56", 56), ("转发(7)", 7), ("1.2w", 12_000), ("3W", 30_000), ("1.2k", 1_200),
    ("3K", 3_000), ("2M views", 2_000_000), ("2m", 2_000_000), ("3 mins", 3), ("5 members", 5), ("12 kg", 12),
    ("0", 0), ("  42  ", 42), (42, 42), (3.7, 3), (-3, 0), (-2.5, 0),
    (None, None), (True, None), (False, None), ("", None), ("评论", None), ("1.2.3", None),
    (float("nan"), None), (float("inf"), None),
])
def test_parse_count(value: Any, expected: int | None) -> None:
    """Chinese and Western count notations read to an int; no number (or a non-number) is None."""
    assert parse_count(value) == expected


# -- JSON paths -------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("path", "parts"), [
    ("ok", ["ok"]),
    ("data.cards[*].mblog.user.screen_name", ["data", "cards", "*", "mblog", "user", "screen_name"]),
    ("post_stream.posts[0].cooked", ["post_stream", "posts", 0, "cooked"]),
    ("list[-1]", ["list", -1]),
    ("a[*][*]", ["a", "*", "*"]),
    ("[0].id", [0, "id"]),
    ("名字.值", ["名字", "值"]),
])
def test_split_path(path: str, parts: list[str | int]) -> None:
    """Dotted keys, [*] fan-outs and [n] indexes."""
    assert split_path(path) == parts


@pytest.mark.parametrize("path", ["", ".", ".a", "a.", "a..b", "a[", "a]", "a[x]", "a[1.5]", "a[*", "[]"])
def test_split_path_errors_say_how_to_write_it(path: str) -> None:
    """A malformed path is a ValueError with an example of a good one."""
    with pytest.raises(ValueError, match=r"write it like data\.items\[\*\]\.title"):
        split_path(path)


DATA = {
    "ok": 1,
    "data": {"cards": [
        {"card_type": 9, "mblog": {"id": "1", "user": {"screen_name": "甲"}}},
        {"card_type": 11, "card_group": [{"mblog": {"id": "2"}}, {"user": {"id": 7}}, {"mblog": {"id": "3"}}]},
        {"card_type": 9, "mblog": None},
        "not a card",
    ]},
    "zero": 0,
    "empty": [],
}


@pytest.mark.parametrize(("path", "values"), [
    ("ok", [1]),
    ("data.cards[*].mblog", [{"id": "1", "user": {"screen_name": "甲"}}, None]),
    ("data.cards[*].mblog.id", ["1"]),
    ("data.cards[*].card_group[*].mblog.id", ["2", "3"]),
    ("data.cards[0].mblog.user.screen_name", ["甲"]),
    ("data.cards[-1]", ["not a card"]),
    ("data.cards[1].card_group[-2].user.id", [7]),
    ("data.cards[9]", []),
    ("data.cards[-9]", []),
    ("data.missing[*].x", []),
    ("ok.deeper", []),
    ("ok[*]", []),
    ("data[0]", []),
    ("zero", [0]),
    ("empty[*]", []),
])
def test_iter_path(path: str, values: list[Any]) -> None:
    """Every value at a path; [*] fans out over lists only; missing keys and bad indexes yield nothing."""
    assert list(iter_path(DATA, path)) == values


def test_get_path_first_value_or_default() -> None:
    """The first value, a falsy value kept as it is, or the default."""
    assert get_path(DATA, "data.cards[*].card_group[*].mblog.id") == "2"
    assert get_path(DATA, "zero", default=5) == 0
    assert get_path(DATA, "nope") is None and get_path(DATA, "nope", "x") == "x"
    assert get_path(DATA, ["data", "cards", 0, "card_type"]) == 9
    assert get_path(DATA, []) is DATA
    with pytest.raises(ValueError):
        get_path(DATA, "a..b")
