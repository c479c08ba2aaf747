"""The RSS/Atom source through the real path: a loopback server, the shared HttpClient, parse_pages, the store.

Fixture feeds live in ``tests/fixtures/rss/``: each ``NAME.xml`` (original content, in the encoding it declares or
is served with) has ``NAME.expected.json`` beside it, the normalised posts it must give. A ``<!-- fixture: {...} -->``
comment in each feed describes it and may set ``content_type`` (the header it is served with), ``timezone`` (the
source's) and ``problem`` (a substring the parse problems must contain). In expected files, ``{base}`` stands for the
server's root and ``{fetched_at}`` for the fetch time (what a post without a date gets).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import pytest

from monitor.clock import ManualClock
from monitor.config import HttpConfig, source_digest
from monitor.db import Store, make_engine, upgrade
from monitor.db.store import FAILING, OK
from monitor.errors import ParseError
from monitor.http import HttpClient
from monitor.normalize import Post
from monitor.runner import RunOutcome, SourceRunner, parse_pages
from sources.rss import RssConfig, RssSource
from tests.loopback import LoopbackServer, Request, Response

T = TypeVar("T")
FIXTURES = Path(__file__).parent / "fixtures" / "rss"
FEEDS = sorted(p.name for p in FIXTURES.glob("*.xml"))
FETCHED_AT = datetime(2026, 11, 22, 12, 0, tzinfo=UTC)
DEFAULT_TZ = "Asia/Shanghai"
_META = re.compile(r"<!--\s*fixture:\s*(\{.*?\})\s*-->", re.S)


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the developer's environment must not capture requests to 127.0.0.1."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


class Sleeps(list[float]):
    """An injected ``sleep`` that records retry delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def http_config(**overrides: Any) -> HttpConfig:
    """Test defaults: no spacing, short timeouts, one quick retry."""
    values: dict[str, Any] = {"per_host_interval": 0, "timeout": 2.0, "connect_timeout": 1.0, "retries": 1}
    values.update(overrides)
    return HttpConfig(**values)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop (pytest-asyncio is deliberately not used)."""
    return asyncio.run(coro)


def fixture_meta(raw: bytes) -> dict[str, Any]:
    """The ``<!-- fixture: {...} -->`` comment of a feed (its keys and the values used here are ASCII)."""
    m = _META.search(raw.decode("latin-1"))
    assert m, "every fixture feed describes itself in a <!-- fixture: {...} --> comment"
    meta: dict[str, Any] = json.loads(m.group(1))
    return meta


def source_for(url: str, **options: Any) -> RssSource:
    """An RSS source validated from config, as the daemon builds it."""
    return RssSource(RssConfig.model_validate({"name": "feed", "type": "rss", "url": url, "interval": "5m",
                                               **options}))


def fetch_and_parse(url: str, **options: Any) -> tuple[list[Post], list[str]]:
    """``RssSource.fetch`` with a real HttpClient, then ``parse_pages`` in the source's timezone."""
    source = source_for(url, **options)

    async def go() -> tuple[list[Post], list[str]]:
        async with HttpClient(http_config(), clock=ManualClock(FETCHED_AT), sleep=Sleeps()) as http:
            fetched = await source.fetch(http, {})
        assert len(fetched.pages) == 1
        return parse_pages(source, fetched.pages, ZoneInfo(source.config.timezone or DEFAULT_TZ))

    return run(go())


def as_dicts(posts: list[Post]) -> list[dict[str, str]]:
    """The compared fields of posts, JSON-like."""
    return [{"native_id": p.native_id, "title": p.title, "text": p.text, "url": p.url, "author": p.author,
             "published_at": p.published_at.astimezone(UTC).isoformat()} for p in posts]


def expected_posts(name: str, base: str) -> list[dict[str, str]]:
    """``NAME.expected.json`` with its placeholders filled in."""
    text = (FIXTURES / name.replace(".xml", ".expected.json")).read_text("utf-8")
    text = text.replace("{base}", base).replace("{fetched_at}", FETCHED_AT.isoformat())
    data: list[dict[str, str]] = json.loads(text)
    return data


def serve_fixture(server: LoopbackServer, name: str, path: str | None = None) -> str:
    """Serve a fixture feed with the Content-Type its comment asks for; return its URL."""
    raw = (FIXTURES / name).read_bytes()
    content_type = fixture_meta(raw).get("content_type", "application/rss+xml")
    path = path or f"/feeds/{name}"
    server.route(path, Response(200, raw, {"Content-Type": content_type}))
    return server.url(path)


# -- every fixture feed, through fetch and parse_pages -----------------------------------------------------------

def test_every_feed_has_an_expected_file() -> None:
    assert len(FEEDS) >= 9
    for name in FEEDS:
        assert (FIXTURES / name.replace(".xml", ".expected.json")).is_file(), name
    orphans = {p.name.replace(".expected.json", ".xml") for p in FIXTURES.glob("*.expected.json")} - set(FEEDS)
    assert not orphans


@pytest.mark.parametrize("name", FEEDS)
def test_fixture_feed(server: LoopbackServer, name: str) -> None:
    raw = (FIXTURES / name).read_bytes()
    meta = fixture_meta(raw)
    url = serve_fixture(server, name)
    options = {"timezone": meta["timezone"]} if "timezone" in meta else {}
    posts, problems = fetch_and_parse(url, **options)
    assert as_dicts(posts) == expected_posts(name, server.base)
    if "problem" in meta:
        assert any(meta["problem"] in p for p in problems), problems
    else:
        assert problems == []
    assert all(p.source == "feed" and p.fetched_at == FETCHED_AT for p in posts)
    assert all(p.content_hash for p in posts)


def test_gbk_fixtures_really_need_the_wider_codecs() -> None:
    """The encoding fixtures only test something if the narrow codec their label names fails on them."""
    with pytest.raises(UnicodeDecodeError):
        (FIXTURES / "gb2312_declared_gbk.xml").read_bytes().decode("gb2312")
    with pytest.raises(UnicodeDecodeError):
        (FIXTURES / "big5_hk.xml").read_bytes().decode("big5")
    raw = (FIXTURES / "gbk_header_charset.xml").read_bytes()
    assert not raw.lstrip().startswith(b"<?xml")
    with pytest.raises(UnicodeDecodeError):
        raw.decode("utf-8")
    latin1_labelled = (FIXTURES / "gbk_latin1_header.xml").read_bytes()
    assert "澄川" not in latin1_labelled.decode("cp1252")  # decodes without an error, into mojibake


def test_naive_dates_follow_the_source_timezone(server: LoopbackServer) -> None:
    url = serve_fixture(server, "naive_dates.xml")
    shanghai = {p.native_id: p.published_at for p in fetch_and_parse(url)[0]}
    tokyo = {p.native_id: p.published_at for p in fetch_and_parse(url, timezone="Asia/Tokyo")[0]}
    assert shanghai.keys() == tokyo.keys()
    aware = "https://service.example.com/notice/505"
    for native_id, when in shanghai.items():
        shift = timedelta(0) if native_id == aware else timedelta(hours=1)  # Tokyo is an hour ahead of Shanghai
        assert when - tokyo[native_id] == shift, native_id


def test_hashed_ids_do_not_depend_on_where_the_feed_is(server: LoopbackServer) -> None:
    first = fetch_and_parse(serve_fixture(server, "no_guid.xml", "/a/feed.xml"))[0]
    second = fetch_and_parse(serve_fixture(server, "no_guid.xml", "/elsewhere/rss"))[0]
    assert [p.native_id for p in first] == [p.native_id for p in second]
    assert sum(p.native_id.startswith("h:") for p in first) == 2


def test_max_items_limits_entries(server: LoopbackServer) -> None:
    posts, _ = fetch_and_parse(serve_fixture(server, "naive_dates.xml"), max_items=2)
    assert [p.native_id for p in posts] == ["https://service.example.com/notice/501",
                                            "https://service.example.com/notice/502"]


# -- pages that are not feeds ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("file", "content_type", "message"), [
    ("login_wall.html", "text/html; charset=utf-8", "HTML page, not a feed; it may be a login wall"),
    ("login_wall.html", "application/rss+xml", "HTML page, not a feed; it may be a login wall"),
    ("login_xhtml.html", "application/xhtml+xml", "HTML page, not a feed; it may be a login wall"),
    ("sitemap.xml", "application/xml", "not RSS/Atom"),
    ("error_document.xml", "application/xml", "not RSS/Atom"),
    ("api_error.xml", "text/xml; charset=utf-8", "not RSS/Atom"),
])
def test_not_a_feed_is_a_parse_error(server: LoopbackServer, file: str, content_type: str, message: str) -> None:
    server.route("/feed", Response(200, (FIXTURES / "broken" / file).read_bytes(), {"Content-Type": content_type}))
    with pytest.raises(ParseError) as info:
        fetch_and_parse(server.url("/feed"))
    assert message in str(info.value)
    assert server.url("/feed") in str(info.value)


def test_empty_body_is_a_parse_error(server: LoopbackServer) -> None:
    server.route("/feed", Response(200, b"", {"Content-Type": "application/rss+xml"}))
    with pytest.raises(ParseError, match="empty body"):
        fetch_and_parse(server.url("/feed"))


def test_garbage_is_a_parse_error(server: LoopbackServer) -> None:
    server.route("/feed", Response(200, bytes(range(256)) * 8, {"Content-Type": "application/octet-stream"}))
    with pytest.raises(ParseError, match="not a readable RSS/Atom feed"):
        fetch_and_parse(server.url("/feed"))


def test_truncated_feed_without_entries_is_a_parse_error(server: LoopbackServer) -> None:
    cut = (FIXTURES / "rss20_complaints.xml").read_bytes().split(b"<item>")[0]
    server.route("/feed", Response(200, cut, {"Content-Type": "application/rss+xml"}))
    with pytest.raises(ParseError, match="not a readable RSS/Atom feed"):
        fetch_and_parse(server.url("/feed"))


def test_valid_feed_without_items_is_no_posts(server: LoopbackServer) -> None:
    empty = "<?xml version='1.0'?><rss version='2.0'><channel><title>暂无投诉</title></channel></rss>".encode()
    server.route("/feed", Response(200, empty, {"Content-Type": "application/rss+xml"}))
    assert fetch_and_parse(server.url("/feed")) == ([], [])


# -- through the store, on SQLite and PostgreSQL -----------------------------------------------------------------

class FeedSite:
    """A feed endpoint with an ETag of its body, answering conditional GETs with 304; can be broken on demand."""

    def __init__(self, body: bytes, *, etag: bool = True) -> None:
        self.body = body
        self.status = 200
        self.delay = 0.0
        self.use_etag = etag
        self.last_modified = "Sat, 21 Nov 2026 11:02:00 GMT"

    @property
    def etag(self) -> str:
        """A strong validator of the current body."""
        return '"' + hashlib.sha1(self.body).hexdigest()[:16] + '"'

    def __call__(self, req: Request) -> Response:
        if self.status != 200:
            return Response(self.status, "服务器内部错误".encode(), {"Content-Type": "text/plain; charset=utf-8"})
        validators = {"ETag": self.etag} if self.use_etag else {"Last-Modified": self.last_modified}
        if (req.headers.get("if-none-match") == self.etag if self.use_etag
                else req.headers.get("if-modified-since") == self.last_modified):
            return Response(304, headers=validators, delay=self.delay)
        return Response(200, self.body, {"Content-Type": "application/rss+xml; charset=utf-8", **validators},
                        delay=self.delay)


@dataclass
class Stack:
    """A migrated database, its store and a clock, for one test."""

    store: Store
    clock: ManualClock
    url: str

    def runner(self, http: HttpClient, worker: ThreadPoolExecutor) -> SourceRunner:
        """A SourceRunner over this stack."""
        return SourceRunner(self.store, http, self.clock, DEFAULT_TZ, worker)

    def add(self, source: RssSource) -> None:
        """Sync one source into the sources table, as the daemon does from the config."""
        self.store.sync_sources([(source.name, source.kind, source_digest(source.config))], self.clock.now())

    def health(self, name: str) -> Any:
        """The health row of ``name``."""
        (row,) = [h for h in self.store.health() if h.name == name]
        return row


@contextmanager
def db_stack(db_url: str) -> Iterator[Stack]:
    """A migrated database on ``db_url``."""
    engine = make_engine(db_url)
    try:
        upgrade(engine)
        yield Stack(Store(engine), ManualClock(FETCHED_AT), db_url)
    finally:
        engine.dispose()


def poll_all(stack: Stack, source: RssSource, steps: list[Any], **http: Any) -> list[RunOutcome]:
    """Run ``source`` once per step on one event loop; a step is a callable run before its poll (or None)."""
    async def go() -> list[RunOutcome]:
        outcomes = []
        with ThreadPoolExecutor(1) as worker:
            async with HttpClient(http_config(**http), clock=stack.clock, sleep=Sleeps()) as client:
                runner = stack.runner(client, worker)
                for step in steps:
                    if step is not None:
                        step()
                    outcomes.append(await runner.run(source))
                    stack.clock.advance(4 * 3600)  # past any backoff: each step is a due poll
        return outcomes
    return run(go())


def with_item(feed: bytes, item: str) -> bytes:
    """The feed with one more item at the top."""
    return feed.replace(b"<item>", item.encode() + b"\n    <item>", 1)


NEW_ITEM = """<item>
      <title>澄川电器燃气灶打不着火，更换点火针后复发</title>
      <link>https://tousu.example.com/complaint/20261121</link>
      <guid isPermaLink="false">tousu-20261121</guid>
      <dc:creator>孙女士</dc:creator>
      <pubDate>Sat, 21 Nov 2026 19:02:00 +0800</pubDate>
      <description>今年三月购买，十月开始打火困难，维修后不到一个月又坏了。</description>
    </item>"""


def test_incremental_polls_store_each_post_once(server: LoopbackServer, db_url: str) -> None:
    site = FeedSite((FIXTURES / "rss20_complaints.xml").read_bytes())
    server.route("/feed.xml", site)
    source = source_for(server.url("/feed.xml"))
    etags: list[str] = []

    def add_item() -> None:
        etags.append(site.etag)
        site.body = with_item(site.body, NEW_ITEM)

    def edit_item() -> None:
        etags.append(site.etag)
        site.body = site.body.replace("只说“已登记，请等待”。".encode(),
                                      "只说“已登记，请等待”。（更新：11月22日已上门更换排水管。）".encode())

    with db_stack(db_url) as stack:
        stack.add(source)
        first, unchanged, added, edited = poll_all(stack, source, [None, None, add_item, edit_item])
        assert (first.status, first.new, first.updated, first.pages) == (OK, 3, 0, 1)
        assert (unchanged.status, unchanged.new, unchanged.updated, unchanged.pages) == (OK, 0, 0, 0)
        assert (added.status, added.new, added.updated) == (OK, 1, 0)
        assert [p.native_id for p in added.new_posts] == ["tousu-20261121"]
        assert (edited.status, edited.new, edited.updated) == (OK, 0, 1)

        hits = server.hits("/feed.xml")
        assert len(hits) == 4
        assert "if-none-match" not in hits[0].headers
        assert hits[1].headers["if-none-match"] == etags[0]  # answered 304
        assert hits[2].headers["if-none-match"] == etags[0]  # stale: the new body came back
        assert hits[3].headers["if-none-match"] == etags[1]

        assert stack.store.count_posts("feed") == 4
        stored = {p.native_id: p for p in stack.store.recent_posts(source="feed")}
        assert "11月22日已上门更换排水管" in stored["tousu-20261101"].text
        assert stored["tousu-20261121"].published_at == datetime(2026, 11, 21, 11, 2, tzinfo=UTC)
        assert stored["tousu-20261112"].author == "赵先生"
        health = stack.health("feed")
        assert (health.status, health.consecutive_failures, health.posts_total) == (OK, 0, 4)


def test_last_modified_alone_gives_conditional_polls(server: LoopbackServer, db_url: str) -> None:
    site = FeedSite((FIXTURES / "rss20_complaints.xml").read_bytes(), etag=False)
    server.route("/feed.xml", site)
    source = source_for(server.url("/feed.xml"))
    with db_stack(db_url) as stack:
        stack.add(source)
        first, second = poll_all(stack, source, [None, None])
        assert (first.new, second.new, second.pages) == (3, 0, 0)
        hits = server.hits("/feed.xml")
        assert hits[1].headers["if-modified-since"] == site.last_modified
        assert "if-none-match" not in hits[1].headers
        assert stack.store.source_state("feed").cursor["last_modified"] == site.last_modified


def test_failing_feed_is_marked_and_recovers(server: LoopbackServer, db_url: str) -> None:
    site = FeedSite((FIXTURES / "rss20_complaints.xml").read_bytes())
    site.status = 500
    server.route("/feed.xml", site)
    source = source_for(server.url("/feed.xml"))
    seen: list[tuple[str, int, str | None]] = []

    with db_stack(db_url) as stack:
        def check() -> None:
            h = stack.health("feed")
            seen.append((h.status, h.consecutive_failures, h.last_error))

        def fix() -> None:
            check()
            site.status = 200

        stack.add(source)
        outcomes = poll_all(stack, source, [None, check, fix])
        check()
        assert [o.status for o in outcomes] == [FAILING, FAILING, OK]
        assert "HTTP 500" in (outcomes[0].error or "")
        (s1, f1, e1), (s2, f2, e2), (s3, f3, e3) = seen
        assert (s1, f1) == (FAILING, 1) and e1 and "HTTP 500" in e1
        assert (s2, f2) == (FAILING, 2) and e2 and "HTTP 500" in e2
        assert (s3, f3, e3) == (OK, 0, None)
        assert outcomes[2].new == 3 and stack.store.count_posts("feed") == 3
        assert len(server.hits("/feed.xml")) == 2 + 2 + 1  # each failing poll retried once within the poll


def test_huge_feed_is_refused_without_crashing(server: LoopbackServer, db_url: str) -> None:
    item = b"<item><title>" + "刷屏".encode() * 1000 + b"</title></item>"

    def fifty_megabytes() -> Iterator[bytes]:
        yield b'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>'
        for _ in range(50_000_000 // len(item)):
            yield item

    def huge(_req: Request) -> Response:
        return Response(200, chunks=fifty_megabytes(), headers={"Content-Type": "application/rss+xml"})

    server.route("/huge.xml", huge)
    source = source_for(server.url("/huge.xml"), max_bytes=2_000_000)
    with db_stack(db_url) as stack:
        stack.add(source)
        (outcome,) = poll_all(stack, source, [None])
        assert outcome.status == FAILING
        assert outcome.error and "2,000,000-byte cap" in outcome.error
        h = stack.health("feed")
        assert h.status == FAILING and h.last_error and "byte cap" in h.last_error
        assert stack.store.count_posts("feed") == 0
    assert len(server.hits("/huge.xml")) == 1  # too large is not retried


def test_hanging_feed_times_out(server: LoopbackServer, db_url: str) -> None:
    site = FeedSite((FIXTURES / "rss20_complaints.xml").read_bytes())
    site.delay = 5.0
    server.route("/feed.xml", site)
    source = source_for(server.url("/feed.xml"), timeout=0.3)
    with db_stack(db_url) as stack:
        stack.add(source)
        (outcome,) = poll_all(stack, source, [None], retries=0)
        assert outcome.status == FAILING
        assert outcome.error and "timed out after 0.3s" in outcome.error
        assert stack.health("feed").consecutive_failures == 1
