"""Field extraction helpers shared by the config-driven kinds (html, json): numbers, times, JSON paths, transforms.

All pure: the "now" of a relative time ("5分钟前") is the page's fetch time, passed in.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from email.utils import parsedate_to_datetime
from typing import Any

# A letter multiplier must end the word: "3 mins" is 3, not 3 million; "2M views" and "1.2w" are multiplied.
_NUM = re.compile(r"(\d+(?:[.,]\d+)*)\s*(?:(万|亿|千)|(w|W|k|K|m|M)(?![A-Za-z]))?")
_MULT = {"万": 10_000, "w": 10_000, "W": 10_000, "亿": 100_000_000, "千": 1_000, "k": 1_000, "K": 1_000,
         "m": 1_000_000, "M": 1_000_000}


def parse_count(value: Any) -> int | None:
    """``"1.2万"`` -> 12000, ``"3,456"`` -> 3456, ``"评论 56"`` -> 56, ``"10万+"`` -> 100000; None if no number."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, int):
        return max(0, value)
    if isinstance(value, float):
        return max(0, int(value)) if math.isfinite(value) else None  # json.loads reads NaN and Infinity
    m = _NUM.search(str(value))
    if not m:
        return None
    digits = m.group(1)
    # "1,234" is a thousands separator; "1.2" a decimal. European "1.234" is not used on these sites.
    try:
        number = float(digits.replace(",", "")) if "," in digits else float(digits)
    except ValueError:  # "1.2.3" (a version, a date) is not a count
        return None
    return round(number * _MULT.get(m.group(2) or m.group(3) or "", 1))


_REL = [
    (re.compile(r"^(刚刚|just now)", re.I), lambda m: timedelta(0)),
    (re.compile(r"^(\d+)\s*秒(钟)?前"), lambda m: timedelta(seconds=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*分钟?前"), lambda m: timedelta(minutes=int(m.group(1)))),
    (re.compile(r"^半小时前"), lambda m: timedelta(minutes=30)),
    (re.compile(r"^(\d+)\s*(个)?小时前"), lambda m: timedelta(hours=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*天前"), lambda m: timedelta(days=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*(周|星期)前"), lambda m: timedelta(weeks=int(m.group(1)))),
    # Months and years are approximate, but far better than dating an old post by its fetch time (a false burst).
    (re.compile(r"^(\d+)\s*个?月前"), lambda m: timedelta(days=30 * int(m.group(1)))),
    (re.compile(r"^(\d+)\s*年前"), lambda m: timedelta(days=365 * int(m.group(1)))),
    (re.compile(r"^(\d+)\s*(seconds?|secs?) ago", re.I), lambda m: timedelta(seconds=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*(minutes?|mins?) ago", re.I), lambda m: timedelta(minutes=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*(hours?|hrs?) ago", re.I), lambda m: timedelta(hours=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*days? ago", re.I), lambda m: timedelta(days=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*weeks? ago", re.I), lambda m: timedelta(weeks=int(m.group(1)))),
    (re.compile(r"^(\d+)\s*months? ago", re.I), lambda m: timedelta(days=30 * int(m.group(1)))),
    (re.compile(r"^(\d+)\s*years? ago", re.I), lambda m: timedelta(days=365 * int(m.group(1)))),
]
_DAY_WORD = {"今天": 0, "昨天": 1, "前天": 2}
_CLOCK = r"(\d{1,2})[:：](\d{2})(?:[:：](\d{2}))?"
_DAYWORD_TIME = re.compile(r"^(今天|昨天|前天)\s*" + f"(?:{_CLOCK})?")
_FULL = re.compile(r"^(\d{4})[-/.年](\d{1,2})[-/.月](\d{1,2})日?(?:[ T]*" + _CLOCK + ")?")
# The zone at the end of an ISO-like time: 2024-12-05T08:00:00.123Z, 2024-12-05 08:00:00+08:00, ... 08:00 +0800.
_OFFSET = re.compile(r"(?<=\d)\s*(?:(Z|UTC|GMT)|([+-])(\d{2}):?(\d{2}))$", re.I)
_FRACTION = re.compile(r"\d[:：]\d{2}[.,](\d+)")
_MONTH_DAY = re.compile(r"^(\d{1,2})[-/.月](\d{1,2})日?(?:\s*" + _CLOCK + ")?$")
_TIME_ONLY = re.compile(r"^" + _CLOCK + "$")
# Weibo's API (and Twitter's): "Sat Jan 28 00:00:59 +0800 2017". Read by hand: strptime's %b follows the locale.
_WEIBO = re.compile(r"^[A-Z][a-z]{2} ([A-Z][a-z]{2}) (\d{1,2}) (\d{2}):(\d{2}):(\d{2}) ([+-])(\d{2})(\d{2}) (\d{4})$")
_MONTHS = {"Jan": 1, "Feb": 2, "Mar": 3, "Apr": 4, "May": 5, "Jun": 6, "Jul": 7, "Aug": 8, "Sep": 9, "Oct": 10,
           "Nov": 11, "Dec": 12}


def parse_time(value: Any, now: datetime, tz: tzinfo) -> datetime | None:
    """Read the many ways Chinese sites write a time; return an aware datetime or None (never raise).

    Handles epoch seconds/milliseconds, ISO 8601, RFC 822, Weibo's ``Sat Jan 28 00:00:59 +0800 2017``,
    ``2024-12-05 08:00``, ``2024年12月5日``, ``12-05 08:00`` (this year, or last year if that would be in
    the future), ``08:30`` (today, or yesterday if that would be in the future), ``刚刚``, ``5分钟前``, ``3小时前``,
    ``3天前``, ``3个月前``, ``5 minutes ago``, ``昨天 12:30``, ``前天``. Times without an offset are in ``tz``;
    ``now`` (aware) anchors relative times.
    """
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=tz)
    if isinstance(value, int | float):
        return _epoch(float(value))
    text = re.sub(r"\s+", " ", str(value)).strip()
    text = re.sub(r"^(发表于|发布于|发表时间[:：]?|发布时间[:：]?|投诉时间[:：]?|时间[:：]?)\s*", "", text)
    if not text:
        return None
    if re.fullmatch(r"\d{10}(\d{3})?(\.\d+)?", text):
        return _epoch(float(text))
    local_now = now.astimezone(tz)
    for pattern, delta in _REL:
        m = pattern.match(text)
        if m:
            try:
                return now - delta(m)
            except (OverflowError, ValueError):  # "99999999天前"
                return None
    m = _DAYWORD_TIME.match(text)
    if m:
        day = (local_now - timedelta(days=_DAY_WORD[m.group(1)])).date()
        hour, minute, sec = (int(m.group(2)), int(m.group(3)), int(m.group(4) or 0)) if m.group(2) else (0, 0, 0)
        return _safe(day.year, day.month, day.day, hour, minute, sec, tz)
    m = _WEIBO.match(text)
    if m:
        month = _MONTHS.get(m.group(1))
        offset = _zone(1 if m.group(6) == "+" else -1, int(m.group(7)), int(m.group(8)))
        if month is None or offset is None:
            return None
        return _safe(int(m.group(9)), month, int(m.group(2)), int(m.group(3)), int(m.group(4)), int(m.group(5)),
                     offset)
    m = _FULL.match(text)
    if m:
        y, mo, d = int(m.group(1)), int(m.group(2)), int(m.group(3))
        h, mi, s = (int(m.group(4)), int(m.group(5)), int(m.group(6) or 0)) if m.group(4) else (0, 0, 0)
        zone: tzinfo | None = None
        off = _OFFSET.search(text) if m.group(4) else None
        if off:
            zone = UTC if off.group(1) else _zone(1 if off.group(2) == "+" else -1, int(off.group(3)),
                                                  int(off.group(4)))
            if zone is None:
                return None
        full = _safe(y, mo, d, h, mi, s, zone or tz)
        frac = _FRACTION.search(text) if m.group(6) else None
        return full.replace(microsecond=int(frac.group(1)[:6].ljust(6, "0"))) if full and frac else full
    m = _MONTH_DAY.match(text)
    if m:
        mo, d = int(m.group(1)), int(m.group(2))
        h, mi, s = (int(m.group(3)), int(m.group(4)), int(m.group(5) or 0)) if m.group(3) else (0, 0, 0)
        guess = _safe(local_now.year, mo, d, h, mi, s, tz)
        if guess and guess > now + timedelta(days=1):  # "12-31" read on 1 January is last year's
            guess = _safe(local_now.year - 1, mo, d, h, mi, s, tz)
        return guess
    m = _TIME_ONLY.match(text)
    if m:
        today = _safe(local_now.year, local_now.month, local_now.day, int(m.group(1)), int(m.group(2)),
                      int(m.group(3) or 0), tz)
        if today and today > now + timedelta(minutes=10):  # "23:50" seen at 00:10 was yesterday's
            today -= timedelta(days=1)
        return today
    try:
        parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    except ValueError:
        pass
    try:
        parsed = parsedate_to_datetime(text)
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=tz)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None


def _zone(sign: int, hours: int, minutes: int) -> tzinfo | None:
    if hours > 23 or minutes > 59:
        return None
    return timezone(sign * timedelta(hours=hours, minutes=minutes))


def _epoch(value: float) -> datetime | None:
    if not math.isfinite(value) or value <= 0:  # 0 and -1 are "unknown" in many APIs, not 1970
        return None
    if value > 1e11:  # milliseconds
        value /= 1000
    try:
        return datetime.fromtimestamp(value, UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _safe(y: int, mo: int, d: int, h: int, mi: int, s: int, tz: tzinfo) -> datetime | None:
    try:
        return datetime(y, mo, d, h, mi, s, tzinfo=tz)
    except ValueError:
        return None


# -- JSON paths ----------------------------------------------------------------------------------------------------
_PATH_PART = re.compile(r"([^.\[\]]+)|\[(\*|-?\d+)\]")


def split_path(path: str) -> list[str | int]:
    """``"data.cards[*].mblog.user.screen_name"`` -> ``["data", "cards", "*", "mblog", "user", "screen_name"]``."""
    parts: list[str | int] = []
    pos = 0
    for m in _PATH_PART.finditer(path):
        # Parts are joined by exactly one dot (none before an index); a leading dot or ".." is a typo.
        if m.start() != pos and (path[pos:m.start()] != "." or pos == 0):
            raise ValueError(f"cannot read path {path!r} near {path[pos:]!r}; write it like data.items[*].title")
        pos = m.end()
        if m.group(1) is not None:
            parts.append(m.group(1))
        else:
            idx = m.group(2)
            parts.append("*" if idx == "*" else int(idx))
    if pos != len(path) or not parts:
        raise ValueError(f"cannot read path {path!r}; write it like data.items[*].title")
    return parts


def iter_path(data: Any, path: list[str | int] | str) -> Iterator[Any]:
    """Every value at ``path`` (``[*]`` fans out over a list); missing keys yield nothing."""
    parts = split_path(path) if isinstance(path, str) else path
    if not parts:
        yield data
        return
    head, rest = parts[0], parts[1:]
    if head == "*":
        if isinstance(data, list):
            for item in data:
                yield from iter_path(item, rest)
        return
    if isinstance(head, int):
        if isinstance(data, list) and -len(data) <= head < len(data):
            yield from iter_path(data[head], rest)
        return
    if isinstance(data, dict) and head in data:
        yield from iter_path(data[head], rest)


def get_path(data: Any, path: list[str | int] | str, default: Any = None) -> Any:
    """The first value at ``path``, or ``default``."""
    return next(iter_path(data, path), default)
