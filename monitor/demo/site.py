"""The demo site: a live stream of posts about a made-up phone brand, published as RSS/Atom feeds on 127.0.0.1.

The posts come from ``posts.jsonl`` (written for the demo; no real post is copied). The first ``backlog`` lines are
already "published" when the site starts, dated over the preceding hours; every further line appears a few seconds
after the previous one, dated at the moment it appears, so a poller sees a realistic trickle of new items (and, about
a minute in, a burst of buyers repeating one grievance). At the end of the file the stream starts over with new ids.

Each feed behaves like a different kind of real site: a forum board (RSS 2.0, UTF-8), an old Discuz-style board
(RSS, GBK-encoded, dates without a UTC offset), a complaint portal (Atom) and a news feed (RSS, GMT dates). Every
feed answers conditional GETs (ETag / Last-Modified -> 304) and ``/robots.txt`` allows everything.
"""

from __future__ import annotations

import bisect
import email.utils
import json
import random
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit
from xml.sax.saxutils import escape, quoteattr

#: China Standard Time, the zone the demo sites write their local dates in (fixed offset: no tzdata needed).
CST = timezone(timedelta(hours=8), "CST")
#: Items each feed lists (the newest ones), like a typical site feed.
FEED_ITEMS = 20


@dataclass(frozen=True)
class DemoPost:
    """One line of posts.jsonl."""

    author: str
    title: str
    text: str
    kind: str  # forum | complaint | news
    sentiment_hint: str = ""
    cluster: str = ""  # posts of one burst of the same grievance share a cluster name


@dataclass(frozen=True)
class Feed:
    """One feed of the demo site; ``name`` is also its source name in the demo config."""

    name: str
    path: str  # as requested, query included
    title: str
    kind: str  # the posts it carries
    fmt: str  # rss | atom
    encoding: str  # utf-8 | gbk
    dates: str  # rfc822 (local +0800) | gmt | iso | naive (local time without an offset)
    link: str  # item page URL path, followed by the item number
    label: str  # what it shows, for people

    @property
    def content_type(self) -> str:
        """The Content-Type header this feed is served with."""
        mime = "application/atom+xml" if self.fmt == "atom" else "application/rss+xml"
        if self.encoding == "gbk":
            mime = "text/xml"  # old forum software labels its feeds text/xml
        return f"{mime}; charset={self.encoding.upper() if self.encoding == 'gbk' else self.encoding}"


FEEDS: tuple[Feed, ...] = (
    Feed("forum-board", "/forum/board.rss", "鲸帆社区 · 综合讨论区", "forum", "rss", "utf-8", "rfc822",
         "/forum/thread-", "forum board, RSS 2.0"),
    Feed("bbs-gbk", "/bbs/forum.php?mod=rss&fid=2", "老机友论坛 - 鲸帆专区", "forum", "rss", "gbk", "naive",
         "/bbs/viewthread.php?tid=", "old forum, RSS in GBK, dates without offset"),
    Feed("complaints", "/complaints/atom.xml", "消费投诉平台 · 最新投诉", "complaint", "atom", "utf-8", "iso",
         "/complaints/detail/", "complaint portal, Atom"),
    Feed("news-tech", "/news/tech.xml", "科技快讯", "news", "rss", "utf-8", "gmt", "/news/article-",
         "news site, RSS 2.0"),
)


def load_posts(path: Path | None = None) -> list[DemoPost]:
    """The demo posts, in publication order (the shipped posts.jsonl unless ``path`` is given)."""
    if path is None:
        text = resources.files("monitor.demo").joinpath("posts.jsonl").read_text(encoding="utf-8")
    else:
        text = path.read_text(encoding="utf-8")
    posts = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        try:
            posts.append(DemoPost(data["author"], data["title"], data["text"], data["kind"],
                                  data.get("sentiment_hint", ""), data.get("cluster", "")))
        except KeyError as exc:
            raise ValueError(f"posts.jsonl line {number}: missing {exc.args[0]!r}") from None
    return posts


@dataclass(frozen=True)
class Item:
    """A post as published on one feed."""

    seq: int  # position in the whole stream
    number: int  # the site's id for it (thread number, complaint number...)
    post: DemoPost
    feed: Feed
    published: float  # epoch seconds


class Stream:
    """Decides which post appears on which feed and when; thread-safe, extended lazily as time passes."""

    def __init__(self, posts: list[DemoPost], *, start: float, backlog: int = 24, gap: tuple[float, float] = (2, 6),
                 backlog_gap: tuple[float, float] = (120, 600), seed: int = 7) -> None:
        if not posts:
            raise ValueError("the demo needs at least one post")
        self.posts = posts
        self.start = start
        self.gap = gap
        self._rng = random.Random(seed)
        # Forum posts alternate between the two forum feeds, so both look alive; other kinds have one feed each.
        by_kind: dict[str, list[Feed]] = {}
        for feed in FEEDS:
            by_kind.setdefault(feed.kind, []).append(feed)
        turns: Counter[str] = Counter()
        self._feed_of: list[Feed] = []
        for post in posts:
            choices = by_kind.get(post.kind) or by_kind["forum"]
            self._feed_of.append(choices[turns[post.kind] % len(choices)])
            turns[post.kind] += 1
        # Numbers differ between runs, so a database kept across demo runs (--db) gets new posts each time.
        self.base_number = (int(start) // 10) % 1_000_000 * 1000
        self._items: dict[str, list[Item]] = {feed.name: [] for feed in FEEDS}
        self._lock = threading.Lock()
        self._next_seq = 0
        backlog = min(backlog, len(posts))
        stamp = start - self._rng.uniform(20, 60)
        backlog_times = []
        for _ in range(backlog):
            backlog_times.append(stamp)
            stamp -= self._rng.uniform(*backlog_gap)
        for published in reversed(backlog_times):
            self._add(published)
        self._next_time = start + self._rng.uniform(*gap)

    def _add(self, published: float) -> None:
        seq = self._next_seq
        index = seq % len(self.posts)
        feed = self._feed_of[index]
        items = self._items[feed.name]
        items.append(Item(seq, self.base_number + seq, self.posts[index], feed, published))
        if len(items) > FEED_ITEMS * 10:  # a demo left running for days keeps a bounded history
            del items[: len(items) - FEED_ITEMS * 5]
        self._next_seq += 1

    def items(self, feed: Feed, now: float, limit: int = FEED_ITEMS) -> list[Item]:
        """The newest ``limit`` items of ``feed`` published by ``now``, newest first."""
        with self._lock:
            while self._next_time <= now:
                self._add(self._next_time)
                self._next_time += self._rng.uniform(*self.gap)
            items = self._items[feed.name]
            end = bisect.bisect_right(items, now, key=lambda item: item.published)
            return items[max(0, end - limit):end][::-1]

    def find(self, number: int) -> Item | None:
        """A published item by its number (for item pages)."""
        with self._lock:
            for items in self._items.values():
                for item in items:
                    if item.number == number:
                        return item
        return None


def _date(feed: Feed, when: float) -> str:
    moment = datetime.fromtimestamp(int(when), UTC)
    if feed.dates == "gmt":
        return email.utils.format_datetime(moment, usegmt=True)
    local = moment.astimezone(CST)
    if feed.dates == "iso":
        return local.isoformat()
    if feed.dates == "naive":
        return local.strftime("%Y-%m-%d %H:%M:%S")
    return email.utils.format_datetime(local)  # Wed, 08 Jan 2025 10:31:02 +0800


def render(feed: Feed, items: list[Item], base: str, now: float) -> bytes:
    """The feed document for ``items``, encoded as the feed declares."""
    updated = items[0].published if items else now
    if feed.fmt == "atom":
        entries = "".join(
            f"<entry><title>{escape(i.post.title)}</title><id>urn:demo:{feed.name}:{i.number}</id>"
            f"<link href={quoteattr(base + feed.link + str(i.number))}/>"
            f"<author><name>{escape(i.post.author)}</name></author>"
            f"<published>{_date(feed, i.published)}</published><updated>{_date(feed, i.published)}</updated>"
            f"<summary type=\"text\">{escape(i.post.text)}</summary></entry>\n" for i in items)
        doc = (f'<?xml version="1.0" encoding="utf-8"?>\n<feed xmlns="http://www.w3.org/2005/Atom">'
               f"<title>{escape(feed.title)}</title><id>urn:demo:{feed.name}</id>"
               f"<link rel=\"self\" href={quoteattr(base + feed.path)}/><updated>{_date(feed, updated)}</updated>\n"
               f"{entries}</feed>\n")
    else:
        rows = []
        for i in items:
            link = escape(base + feed.link + str(i.number))
            if feed.encoding == "gbk":  # Discuz-style: no guid (the link is the id), a plain <author>
                who = f"<author>{escape(i.post.author)}</author>"
                guid = ""
            else:
                who = f"<dc:creator>{escape(i.post.author)}</dc:creator>"
                guid = f'<guid isPermaLink="false">demo-{feed.name}-{i.number}</guid>'
            comments = f"<slash:comments>{i.number % 37}</slash:comments>" if feed.kind == "forum" else ""
            rows.append(f"<item><title>{escape(i.post.title)}</title><link>{link}</link>{guid}{who}"
                        f"<pubDate>{_date(feed, i.published)}</pubDate>"
                        f"<description>{escape(i.post.text)}</description>{comments}</item>\n")
        doc = (f'<?xml version="1.0" encoding="{feed.encoding}"?>\n'
               f'<rss version="2.0" xmlns:dc="http://purl.org/dc/elements/1.1/" '
               f'xmlns:slash="http://purl.org/rss/1.0/modules/slash/"><channel>'
               f"<title>{escape(feed.title)}</title><link>{escape(base + feed.path)}</link>"
               f"<description>{escape(feed.title)}</description><language>zh-cn</language>"
               f"<lastBuildDate>{_date(feed, updated)}</lastBuildDate><ttl>1</ttl>\n{''.join(rows)}</channel></rss>\n")
    # A character outside GBK would become a numeric reference, which XML readers decode back.
    return doc.encode(feed.encoding, errors="xmlcharrefreplace")


class DemoSite:
    """The demo HTTP server on 127.0.0.1 (a background thread); ``port=0`` picks a free port."""

    def __init__(self, port: int = 0, *, posts: list[DemoPost] | None = None, clock: Callable[[], float] = time.time,
                 backlog: int = 24, gap: tuple[float, float] = (2, 6), seed: int = 7) -> None:
        self.clock = clock
        self.stream = Stream(posts if posts is not None else load_posts(), start=clock(), backlog=backlog, gap=gap,
                             seed=seed)
        self.stats: Counter[str] = Counter()  # "feed-name 200", "feed-name 304", "robots", "other"
        self._lock = threading.Lock()
        self._feeds = {feed.path: feed for feed in FEEDS}
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the daemon's client expects from real sites
            server_version = "demo-site/1.0"

            def log_message(self, *args: object) -> None:  # the demo prints posts, not access logs
                pass

            def do_GET(self) -> None:
                status, headers, body = site.respond(self.path, {k.lower(): v for k, v in self.headers.items()})
                try:
                    self.send_response(status)
                    for key, value in headers.items():
                        self.send_header(key, value)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def do_HEAD(self) -> None:
                self.do_GET()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.httpd.daemon_threads = True
        self.port = int(self.httpd.server_address[1])
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="demo-site", daemon=True)

    @property
    def base(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://127.0.0.1:{self.port}"

    def url(self, feed: Feed) -> str:
        """The absolute URL of ``feed``."""
        return self.base + feed.path

    def start(self) -> DemoSite:
        """Serve in a background thread."""
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket."""
        self.httpd.shutdown()
        self.httpd.server_close()

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def respond(self, path: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        """Answer one GET: ``(status, headers, body)``."""
        feed = self._feeds.get(path)
        if feed is not None:
            return self._feed(feed, headers)
        plain = urlsplit(path).path
        if plain == "/robots.txt":
            self._count("robots")
            return 200, {"Content-Type": "text/plain; charset=utf-8"}, b"User-agent: *\nAllow: /\n"
        self._count("other")
        if plain == "/":
            rows = "".join(f'<li><a href="{escape(f.path)}">{escape(f.title)}</a> ({escape(f.label)})</li>'
                           for f in FEEDS)
            page = (f"<!doctype html><meta charset=utf-8><title>monitor demo site</title><h1>monitor demo site</h1>"
                    f"<p>Made-up posts about 鲸帆, a fictional phone brand.</p><ul>{rows}</ul>")
            return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
        for f in FEEDS:
            if path.startswith(f.link) and path[len(f.link):].isdigit():
                item = self.stream.find(int(path[len(f.link):]))
                if item is not None:
                    page = (f"<!doctype html><meta charset=utf-8><title>{escape(item.post.title)}</title>"
                            f"<h1>{escape(item.post.title)}</h1><p>{escape(item.post.author)}</p>"
                            f"<p>{escape(item.post.text)}</p>")
                    return 200, {"Content-Type": "text/html; charset=utf-8"}, page.encode()
        return 404, {"Content-Type": "text/plain; charset=utf-8"}, b"not found\n"

    def _feed(self, feed: Feed, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
        now = self.clock()
        items = self.stream.items(feed, now)
        newest = items[0] if items else None
        etag = f'"{feed.name}-{self.stream.base_number}-{newest.seq if newest else "empty"}"'
        modified = int(newest.published if newest else self.stream.start)
        validators = {"ETag": etag, "Last-Modified": email.utils.formatdate(modified, usegmt=True),
                      "Cache-Control": "no-cache"}
        if _not_modified(headers, etag, modified):
            self._count(f"{feed.name} 304")
            return 304, validators, b""
        self._count(f"{feed.name} 200")
        return 200, {"Content-Type": feed.content_type, **validators}, render(feed, items, self.base, now)


def _not_modified(headers: dict[str, str], etag: str, modified: int) -> bool:
    """RFC 9110 13.1: If-None-Match decides when present; otherwise If-Modified-Since."""
    match = headers.get("if-none-match")
    if match is not None:
        tags = {tag.strip().removeprefix("W/") for tag in match.split(",")}
        return "*" in tags or etag in tags
    since = headers.get("if-modified-since")
    if since:
        try:
            return email.utils.parsedate_to_datetime(since).timestamp() >= modified
        except (TypeError, ValueError):
            return False
    return False
