"""Normalising parsed posts: clean text, UTC times, future-date guard, ids, truncation, counts and content hash."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest

from monitor.normalize import (
    FUTURE_SLACK,
    MAX_FIELD,
    MAX_TEXT,
    MAX_TITLE,
    Post,
    clean_text,
    content_hash,
    normalize,
    to_utc,
)
from monitor.source import RawPost

SHANGHAI = ZoneInfo("Asia/Shanghai")
FETCHED = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)


def norm(raw: RawPost, tz: ZoneInfo = SHANGHAI, fetched_at: datetime = FETCHED, source: str = "weibo-hot") -> Post:
    """normalize() with the usual test arguments."""
    return normalize(raw, source=source, fetched_at=fetched_at, tz=tz)


# --- clean_text -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "expected"), [
    ("<p>质量太差</p>", "质量太差"),
    ("<b>退款</b>难，<a href='https://x.cn/?a=1&amp;b=2'>链接</a>", "退款难，链接"),
    ("第一行<br>第二行<br/>第三行<BR />第四行", "第一行\n第二行\n第三行\n第四行"),
    ("<div>甲</div><div>乙</div>", "甲\n\n乙"),  # a closing and an opening block: at most one blank line
    ("<p>一段</p><p>二段</p>", "一段\n\n二段"),
    ("<ul><li>一</li><li>二</li></ul>", "一\n\n二"),
    ("前<script type='text/javascript'>var s = '<p>不要</p>'; alert(1 > 0);</script>后", "前后"),
    ("前<STYLE>p { color: red }</STYLE>后", "前后"),
    ("前<!-- <p>注释</p> -->后", "前后"),
    ("AT&amp;T &lt;b&gt; &quot;引号&quot; &#x4E2D;&#25991; &yen;5", 'AT&T <b> "引号" 中文 ¥5'),
    ('太坑了<img src="face.png" alt="[怒]">退钱', "太坑了[怒]退钱"),  # Weibo emoticons carry tone: keep the alt text
    ("<IMG SRC=x ALT='[泪]' />", "[泪]"),
    ('<img src="photo.jpg" alt="">图', "图"),
    ('<img src="photo.jpg">图', "图"),
    ("价格 a < b 且 c > d", "价格 a < b 且 c > d"),  # comparisons in plain text are not tags
    ("我 <3 你", "我 <3 你"),
    ("", ""),
    ("   \n\t  ", ""),
])
def test_clean_text_html(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


@pytest.mark.parametrize(("raw", "expected"), [
    ("零\u200b宽\u200c字\u200d符\u2060\ufeff", "零宽字符"),
    ("全角\u3000\u3000空格", "全角 空格"),
    ("不换行&nbsp;&nbsp;空格", "不换行 空格"),
    ("a\u00a0\u00a0b", "a b"),
    ("多   个\t\t空白", "多 个 空白"),
    ("  首尾  ", "首尾"),
    ("行尾空格   \n   行首空格", "行尾空格\n行首空格"),
    ("一\n\n\n\n二", "一\n\n二"),
    ("一\n \u3000 \n\t\n二", "一\n\n二"),
    ("\r\n", ""),
    ("e\u0301", "\u00e9"),  # NFC: one code point, so the same text hashes the same
])
def test_clean_text_whitespace_and_invisibles(raw: str, expected: str) -> None:
    assert clean_text(raw) == expected


def test_plain_text_with_only_one_angle_bracket_is_unchanged() -> None:
    assert clean_text("1 < 2 是对的") == "1 < 2 是对的"
    assert clean_text("箭头 -> 右") == "箭头 -> 右"


# --- times ----------------------------------------------------------------------------------------------------------


def test_to_utc_naive_is_taken_in_the_given_zone() -> None:
    assert to_utc(datetime(2024, 6, 1, 8, 30), SHANGHAI) == datetime(2024, 6, 1, 0, 30, tzinfo=UTC)
    assert to_utc(datetime(2024, 6, 1, 8, 30), UTC) == datetime(2024, 6, 1, 8, 30, tzinfo=UTC)
    assert to_utc(datetime(2024, 1, 15, 12), ZoneInfo("America/New_York")) == datetime(2024, 1, 15, 17, tzinfo=UTC)


def test_to_utc_aware_ignores_the_given_zone() -> None:
    aware = datetime(2024, 6, 1, 8, 30, tzinfo=timezone(timedelta(hours=9)))
    result = to_utc(aware, SHANGHAI)
    assert result == datetime(2024, 5, 31, 23, 30, tzinfo=UTC)
    assert result.tzinfo is UTC


def test_naive_published_time_is_in_the_source_zone() -> None:
    post = norm(RawPost("1", published_at=datetime(2024, 6, 1, 8, 0)))
    assert post.published_at == datetime(2024, 6, 1, 0, 0, tzinfo=UTC)
    assert post.published_at.utcoffset() == timedelta(0)
    assert "claimed_published_at" not in post.extra


def test_the_same_naive_time_differs_by_zone() -> None:
    raw = RawPost("1", published_at=datetime(2024, 6, 1, 8, 0))
    assert norm(raw, tz=ZoneInfo("UTC")).published_at - norm(raw, tz=SHANGHAI).published_at == timedelta(hours=8)


def test_aware_published_time_is_converted() -> None:
    published = datetime(2024, 6, 1, 18, 0, tzinfo=timezone(timedelta(hours=8)))
    post = norm(RawPost("1", published_at=published), tz=ZoneInfo("America/Los_Angeles"))
    assert post.published_at == datetime(2024, 6, 1, 10, 0, tzinfo=UTC)
    assert post.published_at.utcoffset() == timedelta(0)


def test_future_time_is_replaced_by_fetch_time() -> None:
    # 19:00 naive read as UTC is 7 hours after the fetch: a wrong zone in the feed, say.
    post = norm(RawPost("1", published_at=datetime(2024, 6, 1, 19, 0)), tz=ZoneInfo("UTC"))
    assert post.published_at == FETCHED
    assert post.extra["claimed_published_at"] == "2024-06-01T19:00:00+00:00"


def test_future_time_far_ahead() -> None:
    post = norm(RawPost("1", published_at=datetime(2099, 1, 1, tzinfo=UTC)))
    assert post.published_at == FETCHED
    assert post.extra == {"claimed_published_at": "2099-01-01T00:00:00+00:00"}


def test_slightly_future_time_within_slack_is_kept() -> None:
    at_slack = FETCHED + FUTURE_SLACK
    post = norm(RawPost("1", published_at=at_slack))
    assert post.published_at == at_slack
    assert "claimed_published_at" not in post.extra
    past_slack = at_slack + timedelta(seconds=1)
    assert norm(RawPost("1", published_at=past_slack)).published_at == FETCHED


def test_future_guard_keeps_other_extra_and_does_not_touch_the_raw_post() -> None:
    raw = RawPost("1", published_at=datetime(2099, 1, 1, tzinfo=UTC), extra={"board": "投诉"})
    post = norm(raw)
    assert post.extra == {"board": "投诉", "claimed_published_at": "2099-01-01T00:00:00+00:00"}
    assert raw.extra == {"board": "投诉"}


def test_missing_time_falls_back_to_fetch_time() -> None:
    post = norm(RawPost("1", published_at=None))
    assert post.published_at == FETCHED
    assert post.fetched_at == FETCHED
    assert "claimed_published_at" not in post.extra


# --- ids ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("native_id", ["", "   ", "\t\n"])
def test_empty_native_id_raises(native_id: str) -> None:
    with pytest.raises(ValueError, match="native id"):
        norm(RawPost(native_id))


def test_uid_is_source_and_native_id() -> None:
    post = norm(RawPost("  4987654321  "), source="weibo-hot")
    assert post.native_id == "4987654321"
    assert post.source == "weibo-hot"
    assert post.uid == "weibo-hot:4987654321"


def test_long_native_id_is_cut() -> None:
    assert norm(RawPost("x" * 1000)).native_id == "x" * MAX_FIELD


# --- truncation and counts ------------------------------------------------------------------------------------------


def test_long_text_is_truncated() -> None:
    post = norm(RawPost("1", text="差" * (MAX_TEXT + 500), title="标" * (MAX_TITLE + 10)))
    assert post.text == "差" * MAX_TEXT
    assert post.title == "标" * MAX_TITLE


def test_text_at_the_limit_is_kept_whole() -> None:
    assert norm(RawPost("1", text="好" * MAX_TEXT)).text == "好" * MAX_TEXT


def test_other_fields_are_cleaned_and_cut() -> None:
    raw = RawPost("1", author="<b>网友</b>\u200b甲", author_id=" u" + "9" * 400, url="  https://bbs.example.cn/t/1  ")
    post = norm(raw)
    assert post.author == "网友甲"
    assert post.author_id == ("u" + "9" * 400)[:MAX_FIELD]
    assert post.url == "https://bbs.example.cn/t/1"


@pytest.mark.parametrize(("value", "expected"), [(-5, 0), (-1, 0), (0, 0), (7, 7), (None, None)])
def test_counts_are_clamped(value: int | None, expected: int | None) -> None:
    post = norm(RawPost("1", reposts=value, comments=value, likes=value))
    assert (post.reposts, post.comments, post.likes) == (expected, expected, expected)


def test_counts_are_independent() -> None:
    post = norm(RawPost("1", reposts=-2, comments=3, likes=None))
    assert (post.reposts, post.comments, post.likes) == (0, 3, None)


# --- content hash ---------------------------------------------------------------------------------------------------


def test_content_hash_is_stable() -> None:
    a = norm(RawPost("1", title="投诉", text="质量太差"))
    b = norm(RawPost("2", title="投诉", text="质量太差", author="别人"), source="other",
             fetched_at=FETCHED + timedelta(days=1))
    assert a.content_hash == b.content_hash == content_hash("投诉", "质量太差")
    assert len(a.content_hash) == 32 and int(a.content_hash, 16) >= 0


def test_content_hash_ignores_markup_and_spacing() -> None:
    plain = norm(RawPost("1", title="投诉", text="质量太差\n客服不理"))
    marked_up = norm(RawPost("1", title="<b>投诉</b>", text="<p>质量太差<br>客服不理</p>"))
    assert marked_up.content_hash == plain.content_hash


@pytest.mark.parametrize(("title", "text"), [
    ("投诉", "质量太差!"), ("投诉", "质量太好"), ("投 诉", "质量太差"), ("", "投诉\n质量太差"), ("投诉质量太差", ""),
])
def test_content_hash_is_sensitive_to_edits(title: str, text: str) -> None:
    assert norm(RawPost("1", title=title, text=text)).content_hash != content_hash("投诉", "质量太差")


def test_post_is_immutable() -> None:
    post = norm(RawPost("1"))
    with pytest.raises(AttributeError):
        post.text = "改"  # type: ignore[misc]
