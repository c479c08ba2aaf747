"""The source plugin contract.

A source kind is one module in ``sources/`` (or a third-party package registered under the ``monitor.sources``
entry-point group) that defines a :class:`Source` subclass with:

* ``kind``: its config key (``type: rss``),
* ``config_model``: a :class:`SourceConfig` subclass validating its options at config load,
* ``fetch(http, cursor)``: the only network I/O, through the shared :class:`~monitor.http.HttpClient`,
* ``parse(page)``: a pure function from one fetched page to raw posts plus problems.

The runner stores the parsed posts and the fetch's new cursor in one transaction, so a crash never half-stores a run.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

from monitor.durations import parse_duration

if TYPE_CHECKING:
    from monitor.http import HttpClient

#: No source may be polled more often than this (seconds): politeness, and a floor against typos like ``interval: 5``.
MIN_INTERVAL = 30.0
#: What a source name may be: it is part of every post id (``name:native_id``), so no colon.
SOURCE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")

Cursor = dict[str, Any]


def _check_url(value: str) -> str:
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL: {value!r}; write it like https://example.com/feed.xml")
    return value.strip()


#: A string that must be an absolute http(s) URL.
HttpUrl = Annotated[str, AfterValidator(_check_url)]


class SourceConfig(BaseModel):
    """Options every source has. A kind subclasses this to add its own (``url``, selectors, ...)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(description="Unique name; part of every post id (name:native_id).")
    type: str = Field(description="The source kind, e.g. rss.")
    interval: float = Field(default=300.0, description="Seconds between polls (or 30s / 5m / 1h).")
    jitter: float | None = Field(default=None, description="Random delay added to each poll; default 10% of interval.")
    enabled: bool = True
    robots: bool | None = Field(default=None, description="Obey robots.txt; default from http.respect_robots.")
    timeout: float | None = Field(default=None, description="Per-request timeout; default from http.timeout.")
    max_bytes: int | None = Field(default=None, ge=1024, description="Response size cap; default from http.max_bytes.")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra request headers (use ${ENV} for secrets).")
    proxy: str | None = None
    timezone: str | None = Field(default=None, description="Zone of times without an offset; default: timezone")
    tags: list[str] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _check_name(cls, v: str) -> str:
        if not SOURCE_NAME.match(v):
            raise ValueError("use 1-64 letters, digits, '_', '-' or '.', starting with a letter or digit")
        return v

    @field_validator("interval", "jitter", "timeout", mode="before")
    @classmethod
    def _duration(cls, v: object) -> float | None:
        return None if v is None else parse_duration(v)

    @field_validator("interval")
    @classmethod
    def _floor(cls, v: float) -> float:
        if v < MIN_INTERVAL:
            raise ValueError(f"must be at least {int(MIN_INTERVAL)}s (polling faster gets you blocked); got {v:g}s")
        return v

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ZoneInfo(v)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"unknown timezone {v!r}; use an IANA name such as Asia/Shanghai") from exc
        return v

    @property
    def effective_jitter(self) -> float:
        """Jitter in seconds (10% of the interval unless set)."""
        return self.jitter if self.jitter is not None else round(self.interval * 0.1, 3)


@dataclass(frozen=True)
class Page:
    """One fetched response, as bytes: decoding is the parser's job (GBK pages!)."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes
    fetched_at: datetime
    not_modified: bool = False
    #: What the source knows about this page (``role: list|detail``, the keyword, the page index, the item id).
    meta: Mapping[str, Any] = field(default_factory=dict)

    @property
    def content_type(self) -> str:
        """The Content-Type header, or ''."""
        return self.headers.get("content-type", "")


@dataclass
class RawPost:
    """A post as a parser read it, before normalisation."""

    native_id: str
    text: str = ""
    title: str = ""
    url: str = ""
    author: str = ""
    author_id: str = ""
    published_at: datetime | None = None
    reposts: int | None = None
    comments: int | None = None
    likes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class ParseResult:
    """What a parser could read from one page, plus what it could not (never throw a whole page away)."""

    posts: list[RawPost] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    #: For APIs that page by cursor (max_id, since_id, next token): the value of {page} for the next page.
    next_page: str | None = None


@dataclass
class FetchResult:
    """The pages of one poll and the cursor to store once they are stored."""

    pages: list[Page]
    cursor: Cursor
    #: Partial failures that did not stop the poll (a later page or a detail page that failed).
    problems: list[str] = field(default_factory=list)


class Source(ABC):
    """Base class of every source kind; instances are built from a validated config."""

    kind: ClassVar[str]
    config_model: ClassVar[type[SourceConfig]] = SourceConfig
    #: A minimal valid config (without name/type) for docs and the contract test; ``{base}`` stands for a site root.
    example: ClassVar[dict[str, Any]] = {}

    def __init__(self, config: SourceConfig) -> None:
        self.config = config

    @property
    def name(self) -> str:
        """The source's configured name."""
        return self.config.name

    @abstractmethod
    async def fetch(self, http: HttpClient, cursor: Cursor) -> FetchResult:
        """Fetch what is new since ``cursor``; the only network I/O of a source."""

    @abstractmethod
    def parse(self, page: Page) -> ParseResult:
        """Parse one page into raw posts; pure and deterministic."""
