"""Turn a parser's RawPost into a stored Post: stable id, clean text, UTC time, content hash."""

from __future__ import annotations

import hashlib
import html
import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from monitor.source import RawPost

MAX_TEXT = 20_000
MAX_TITLE = 500
MAX_FIELD = 255
# A post dated more than this after it was fetched has a bad date (wrong timezone, misparsed year): use fetch time.
FUTURE_SLACK = timedelta(minutes=10)

_IMG_ALT = re.compile(r"<img\b[^>]*?\balt\s*=\s*[\"']([^\"'<>]{1,32})[\"'][^>]*>", re.I)
# A tag starts with a letter, '/', '!' or '?' right after '<' (as in HTML): "a < b and c > d" is text, not a tag.
_TAG = re.compile(r"<(script|style)\b.*?</\1\s*>|<!--.*?-->|<[A-Za-z/!?][^>]{0,2000}>", re.S | re.I)
_BLOCK = re.compile(r"<\s*(br|/p|/div|/li|/h\d|p|div|li|tr)\b[^>]*>", re.I)
_SPACE = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
_NEWLINES = re.compile(r"\n\s*\n+")
_INVISIBLE = dict.fromkeys(map(ord, "\u200b\u200c\u200d\u2060\ufeff"), None)
_HAS_INVISIBLE = re.compile("[\u200b\u200c\u200d\u2060\ufeff]")


@dataclass(frozen=True)
class Post:
    """A normalised post, ready to store and analyse."""

    source: str
    native_id: str
    text: str
    fetched_at: datetime
    published_at: datetime
    title: str = ""
    url: str = ""
    author: str = ""
    author_id: str = ""
    reposts: int | None = None
    comments: int | None = None
    likes: int | None = None
    content_hash: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def uid(self) -> str:
        """Globally unique id, ``source:native_id``."""
        return f"{self.source}:{self.native_id}"


def clean_text(value: str) -> str:
    """Strip HTML tags and entities, invisible characters and runs of blank space; keep line breaks."""
    if not value:
        return ""
    if "<" in value and ">" in value:
        value = _IMG_ALT.sub(r"\1", value)  # Weibo writes emoticons as <img alt="[哈哈]">: keep them, they carry tone
        value = _BLOCK.sub("\n", value)
        value = _TAG.sub("", value)
    value = html.unescape(value)
    if _HAS_INVISIBLE.search(value):  # rare; translate() walks every character through a dict
        value = value.translate(_INVISIBLE)
    value = unicodedata.normalize("NFC", value)
    value = _SPACE.sub(" ", value)
    if "\n" not in value:  # one line (most posts): the line-by-line pass below would only strip it
        return value.strip()
    value = "\n".join(line.strip() for line in value.split("\n"))
    return _NEWLINES.sub("\n\n", value).strip()


def content_hash(title: str, text: str) -> str:
    """A hash of what a post says, to notice edits and exact copies."""
    return hashlib.sha256(f"{title}\n{text}".encode()).hexdigest()[:32]


def to_utc(value: datetime, assume: tzinfo) -> datetime:
    """Aware datetimes to UTC; naive ones are taken to be in ``assume`` (the source's timezone)."""
    if value.tzinfo is None:
        value = value.replace(tzinfo=assume)
    return value.astimezone(UTC)


def normalize(raw: RawPost, *, source: str, fetched_at: datetime, tz: tzinfo) -> Post:
    """Build a Post from a RawPost; never raises on odd input (it is cut, cleaned or defaulted)."""
    native_id = str(raw.native_id).strip()[:MAX_FIELD]
    if not native_id:
        raise ValueError("a post needs a native id")
    title = clean_text(raw.title)[:MAX_TITLE]
    text = clean_text(raw.text)[:MAX_TEXT]
    extra = dict(raw.extra)
    published = to_utc(raw.published_at, tz) if raw.published_at else fetched_at
    if published > fetched_at + FUTURE_SLACK:
        extra["claimed_published_at"] = published.isoformat()
        published = fetched_at
    return Post(
        source=source, native_id=native_id, title=title, text=text, url=raw.url.strip()[:2000],
        author=clean_text(raw.author)[:MAX_FIELD], author_id=str(raw.author_id).strip()[:MAX_FIELD],
        published_at=published, fetched_at=fetched_at,
        reposts=_count(raw.reposts), comments=_count(raw.comments), likes=_count(raw.likes),
        content_hash=content_hash(title, text), extra=extra,
    )


def _count(value: int | None) -> int | None:
    return None if value is None else max(0, int(value))


def followers_of(extra: Any) -> int | None:
    """The author's follower count a post carries in ``extra`` (``followers``, ``followers_count`` or
    ``user.followers_count``, as Weibo-like sources write it); None when absent or not a count."""
    if not extra or not isinstance(extra, Mapping):  # most posts carry nothing (an ABC isinstance check costs)
        return None
    user = extra.get("user")
    for value in (extra.get("followers"), extra.get("followers_count"),
                  user.get("followers_count") if isinstance(user, Mapping) else None):
        if isinstance(value, bool):  # JSON true is not a count
            continue
        if isinstance(value, int | float) and value >= 0:
            return int(value)
        if isinstance(value, str) and value.strip().isdigit():
            return int(value.strip())
    return None
