"""``type: rss``: RSS 0.9x/1.0/2.0 and Atom feeds through feedparser, fetched by the shared client.

Incremental: conditional GET (ETag / Last-Modified) skips unchanged feeds, and the store keeps each entry once
(unique per source and entry id). Feeds labelled GB2312/GBK/Big5 are decoded by :mod:`monitor.encoding` first,
because feedparser falls back to a wrong codec when a GB2312 feed holds GBK-only characters.
"""

from __future__ import annotations

import calendar
import email.utils
import hashlib
from datetime import UTC, datetime
from typing import Any, ClassVar
from urllib.parse import urljoin

import feedparser
from pydantic import Field

from monitor.encoding import to_utf8_xml
from monitor.errors import ParseError
from monitor.http import HttpClient, RequestOptions
from monitor.source import Cursor, FetchResult, HttpUrl, Page, ParseResult, RawPost, Source, SourceConfig

# feedparser sanitises HTML by default; we only keep text, and its sanitiser is a large part of parse time.
feedparser.SANITIZE_HTML = False
feedparser.RESOLVE_RELATIVE_URIS = False


class RssConfig(SourceConfig):
    """Options of an RSS/Atom source."""

    url: HttpUrl = Field(description="The feed's URL")
    max_items: int = Field(default=500, ge=1, le=10_000, description="Entries read per poll at most")


class RssSource(Source):
    """An RSS or Atom feed."""

    kind = "rss"
    config_model = RssConfig
    example: ClassVar[dict[str, Any]] = {"url": "{base}/feed.xml", "interval": "5m"}
    config: RssConfig

    async def fetch(self, http: HttpClient, cursor: Cursor) -> FetchResult:
        """One conditional GET of the feed."""
        # Validators belong to the URL they came from: after a URL edit the old ETag must not be sent.
        same_url = cursor.get("url") == self.config.url
        page = await http.get(self.config.url, RequestOptions(
            headers={"Accept": "application/rss+xml, application/atom+xml, application/xml;q=0.9, */*;q=0.5",
                     **self.config.headers},
            timeout=self.config.timeout, max_bytes=self.config.max_bytes, robots=self.config.robots,
            proxy=self.config.proxy, etag=cursor.get("etag") if same_url else None,
            last_modified=cursor.get("last_modified") if same_url else None))
        if page.not_modified:
            return FetchResult([], dict(cursor))
        return FetchResult([page], {"url": self.config.url, "etag": page.headers.get("etag"),
                                    "last_modified": page.headers.get("last-modified")})

    def parse(self, page: Page) -> ParseResult:
        """Entries of one feed document; raise ParseError if it is not a feed at all."""
        if not page.content.strip():
            raise ParseError(f"{page.url} returned an empty body; the feed may be down or moved")
        data = feedparser.parse(to_utf8_xml(page.content, page.content_type),
                                # No content-location: feedparser would resolve every permalink <guid> against
                                # it, and ids would change with the feed's host. Links are joined below instead.
                                response_headers={"content-type": "application/xml; charset=utf-8"})
        entries = data.get("entries") or []
        # feedparser names the format it recognised (rss20, atom10, rss10, ...). Without one and without entries,
        # this is no feed: feedparser reads a well-formed XHTML login page or a sitemap as an empty "feed".
        if not entries and (data.get("bozo") or not data.get("version")):
            head = page.content[:1024].decode("utf-8", "replace").lower()
            if "<html" in head or "<!doctype html" in head or "text/html" in page.content_type:
                raise ParseError(f"{page.url} returned an HTML page, not a feed; it may be a login wall, "
                                 f"an error page or the site's web page: check the URL in a browser")
            if data.get("bozo"):
                raise ParseError(f"{page.url} is not a readable RSS/Atom feed ({data.get('bozo_exception')}); "
                                 f"check the URL returns XML")
            raise ParseError(f"{page.url} is XML but not RSS/Atom; check the URL")
        result = ParseResult()
        if data.get("bozo"):
            result.problems.append(f"feed is not well-formed ({data.get('bozo_exception')}); read what could be read")
        for entry in entries[: self.config.max_items]:
            try:
                result.posts.append(_entry_post(entry, page.url))
            except Exception as exc:  # one odd entry must not lose the rest of the feed
                result.problems.append(f"skipped an entry: {exc!r}")
        return result


def _entry_post(entry: Any, base: str) -> RawPost:
    link = urljoin(base, entry.get("link") or "") if entry.get("link") else ""
    title = entry.get("title") or ""
    text = ""
    for content in entry.get("content") or []:
        text = content.get("value") or ""
        if text:
            break
    text = text or entry.get("summary") or entry.get("description") or ""
    native = entry.get("id") or link
    if not native:  # no guid and no link: derive a stable id from what the entry says
        native = "h:" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:20]
    # RSS <author> is "email (name)" and feedparser's Atom author is "name (email)": keep the name, not the address.
    author = (entry.get("author_detail") or {}).get("name") or entry.get("author") or entry.get("dc_creator") or ""
    comments = entry.get("slash_comments")
    return RawPost(
        native_id=str(native), url=link, title=title, text=text, author=author,
        published_at=_entry_time(entry),
        comments=int(comments) if isinstance(comments, str) and comments.isdigit() else None,
        extra={"tags": [t.get("term") for t in entry.get("tags") or [] if t.get("term")]} if entry.get("tags") else {},
    )


def _entry_time(entry: Any) -> datetime | None:
    """Publication time; a date without an offset comes back naive (the runner applies the source's timezone)."""
    for key in ("published", "updated", "created"):
        raw = entry.get(key)
        if not raw:
            continue
        parsed = _plain_time(raw)
        if parsed is not None:
            return parsed
        struct = entry.get(f"{key}_parsed")
        if struct:
            return datetime.fromtimestamp(calendar.timegm(struct), UTC)
    return None


def _plain_time(raw: str) -> datetime | None:
    """RFC 822 and ISO 8601 dates; naive when the feed gave no offset (feedparser would assume UTC)."""
    raw = raw.strip()
    try:
        return email.utils.parsedate_to_datetime(raw)  # naive when the zone is -0000 or missing
    except (TypeError, ValueError, IndexError):
        pass
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00").replace("/", "-"))
    except ValueError:
        return None
