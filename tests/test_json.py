"""The json kind through the real path (HTTP on 127.0.0.1 -> fetch -> parse -> store), on SQLite and PostgreSQL.

Field mapping, params, headers from the environment (never logged), reposts, HTML, paging by number and by cursor,
since_id, the API's own errors, login pages, layout changes, empty results, 429, timeouts, oversized responses; and
the real recorded Weibo open-API pages in ../shared/data/fixtures/weibo_api_search_topics.
"""

from __future__ import annotations

import asyncio
import io
import json
import logging
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import yaml

import monitor.logs
from monitor.clock import ManualClock
from monitor.config import Config, parse_config, source_digest
from monitor.db import Store, make_engine, upgrade
from monitor.db.store import BLOCKED, FAILING, LAYOUT, OK, StoredPost
from monitor.errors import LayoutError, ParseError
from monitor.http import HttpClient
from monitor.logs import setup_logging
from monitor.registry import get_kind
from monitor.runner import RunOutcome, SourceRunner
from monitor.source import Page, Source
from sources.json import JsonConfig, JsonSource
from tests.loopback import LoopbackServer, Request, Response

T0 = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in Beijing
JSON_TYPE = {"Content-Type": "application/json; charset=utf-8"}
Route = Callable[[Request], Response]


class Sleeps(list[float]):
    """An injected ``sleep`` that records retry delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


@dataclass
class Rig:
    """A migrated store, a loopback server, a manual clock and an environment: what one json source runs against."""

    store: Store
    server: LoopbackServer
    clock: ManualClock = field(default_factory=lambda: ManualClock(T0))
    sleeps: Sleeps = field(default_factory=Sleeps)
    env: dict[str, str] = field(default_factory=dict)
    http: dict[str, Any] = field(default_factory=lambda: {"per_host_interval": 0, "retries": 0, "timeout": "2s",
                                                          "connect_timeout": "2s"})
    config: Config | None = None

    def source(self, options: dict[str, Any], name: str = "api") -> Source:
        """Validate a source the way the daemon does (YAML, ${ENV}, presets) and register it in the store."""
        base = self.server.base
        options = json.loads(json.dumps(options).replace("{base}", base))
        text = yaml.safe_dump({"http": self.http,
                               "sources": [{"name": name, "type": "json", "interval": 60, **options}]},
                              allow_unicode=True)
        self.config = parse_config(text, env=self.env)
        src = get_kind("json")(self.config.sources[0])
        self.store.sync_sources([(src.name, src.kind, source_digest(src.config))], self.clock.now())
        return src

    def poll(self, source: Source) -> RunOutcome:
        """One poll through SourceRunner with a real HttpClient (retry waits recorded, not slept)."""
        config = self.config
        assert config is not None

        async def go() -> RunOutcome:
            async with HttpClient(config.http, clock=self.clock, sleep=self.sleeps) as http:
                with ThreadPoolExecutor(max_workers=1) as worker:
                    runner = SourceRunner(self.store, http, self.clock, config.timezone, worker)
                    return await runner.run(source, force=True)

        return asyncio.run(go())

    def posts(self, name: str = "api") -> dict[str, StoredPost]:
        """Stored posts of a source by native id."""
        return {p.native_id: p for p in self.store.recent_posts(source=name, limit=10_000)}


@pytest.fixture(scope="module")
def shared_server() -> Iterator[LoopbackServer]:
    """One loopback server per module (stopping one takes half a second); tests reset it."""
    srv = LoopbackServer().start()
    yield srv
    srv.stop()


@pytest.fixture
def server(shared_server: LoopbackServer) -> LoopbackServer:
    """The module's server with no routes and no recorded requests."""
    with shared_server._lock:
        shared_server.routes.clear()
        shared_server.requests.clear()
    return shared_server


@pytest.fixture
def rig(db_url: str, server: LoopbackServer) -> Iterator[Rig]:
    """A Rig on each database backend; robots.txt is absent on the server."""
    engine = make_engine(db_url)
    upgrade(engine)
    server.route("/robots.txt", Response(404))
    yield Rig(Store(engine), server)
    engine.dispose()


def body(data: Any, *, ascii_only: bool = False) -> Response:
    """A 200 JSON response."""
    return Response(200, json.dumps(data, ensure_ascii=ascii_only).encode(), dict(JSON_TYPE))


def query(req: Request) -> dict[str, str]:
    """The decoded query string of a request (first value per name)."""
    return {k: v[0] for k, v in parse_qs(urlsplit(req.path).query, keep_blank_values=True).items()}


def by_page(pages: dict[str, Any], param: str = "page", default: Any = None) -> Route:
    """A route answering the JSON of ``pages[query[param]]`` (or ``default``)."""
    def route(req: Request) -> Response:
        return body(pages.get(query(req).get(param, ""), default))
    return route


def status(sid: int, text: str, *, user: str = "网友", uid: int = 1000, created: str = "Fri Nov 20 10:00:00 +0800 2026",
           reposts: Any = 0, comments: Any = 0, likes: Any = 0, **more: Any) -> dict[str, Any]:
    """One status in the open-API shape the generic tests map."""
    return {"id": sid, "idstr": str(sid), "created_at": created, "text": text,
            "user": {"id": uid, "name": user, "followers_count": 10}, "reposts_count": reposts,
            "comments_count": comments, "attitudes_count": likes, **more}


FIELDS = {"id": "idstr", "text": "text", "author": "user.name", "author_id": "user.id", "published_at": "created_at",
          "reposts": "reposts_count", "comments": "comments_count", "likes": "attitudes_count",
          "url": {"path": "idstr", "template": "https://weibo.example.com/status/{value}"},
          "followers": {"path": "user.followers_count", "transforms": ["number"]}}


def generic(**over: Any) -> dict[str, Any]:
    """A pure-config json source over {base}/api/search returning {"data": {"list": [...]}}."""
    return {"url": "{base}/api/search", "items": "data.list[*]", "nested": ["retweeted"], "fields": FIELDS, **over}


# -- mapping, params, HTML, reposts ----------------------------------------------------------------------------------

def test_fields_params_html_and_reposts_are_stored(rig: Rig) -> None:
    """Each field lands where configured; {keyword}/{page} fill the params; HTML goes, emoticons stay; a repost's
    original is a post of its own linked by extra.repost_of."""
    original = status(4001, "澄星官方：退款将在7个工作日内处理完毕", user="澄星官方", uid=9, reposts="1.2万",
                      comments=300, likes=88, created="Mon Nov 16 20:05:44 +0800 2026")
    items = [
        status(4003, '退款二十天没到账<span class="url-icon"><img alt=[怒] src="x.png" /></span><br/>'
                     '<a href="/search?q=%23X%23">#澄星维权#</a> &amp; 客服占线', user="小周", uid=61,
               reposts=3, comments="17", likes=42, created="5分钟前"),
        status(4002, "转发微博", user="阿May", uid=62, created="昨天 12:30", retweeted=original),
    ]
    rig.server.route("/api/search", by_page({"1": {"data": {"list": items}}}))
    src = rig.source(generic(keywords=["澄星 退款"], params={"q": "{keyword}", "page": "{page}", "count": 20,
                                                             "fresh": True}))
    out = rig.poll(src)
    assert out.status == OK, out.error
    assert out.new == 3 and out.problems == []
    (req,) = rig.server.hits("/api/search")
    assert query(req) == {"q": "澄星 退款", "page": "1", "count": "20", "fresh": "true"}

    posts = rig.posts()
    assert set(posts) == {"4001", "4002", "4003"}
    first = posts["4003"]
    assert first.text == "退款二十天没到账[怒]\n#澄星维权# & 客服占线"
    assert (first.author, first.author_id, first.reposts, first.comments, first.likes) == ("小周", "61", 3, 17, 42)
    assert first.url == "https://weibo.example.com/status/4003"
    assert first.published_at == T0 - timedelta(minutes=5)
    assert first.extra == {"followers": 10}
    repost = posts["4002"]
    assert repost.extra["repost_of"] == "4001"
    assert repost.published_at == datetime(2026, 11, 19, 4, 30, tzinfo=UTC)  # 昨天 12:30 in Beijing
    orig = posts["4001"]
    assert (orig.author, orig.reposts, orig.comments) == ("澄星官方", 12_000, 300)
    assert orig.published_at == datetime(2026, 11, 16, 12, 5, 44, tzinfo=UTC)
    assert "repost_of" not in orig.extra


def test_headers_from_env_reach_the_server_but_never_the_log(rig: Rig) -> None:
    """``Cookie: ${WEIBO_COOKIE}`` is sent; neither it nor a ``${TOKEN}`` in the URL (which error messages quote)
    appears in a log line, and the cookie is not in the stored error either."""
    cookie, token = "SUB=_2A25LzzSecretCookieValue9f3", "tok-7d1e55aa90"
    rig.env = {"WEIBO_COOKIE": cookie, "API_TOKEN": token}
    rig.server.route("/api/search", body({"data": {"list": [status(1, "第一条")]}}))
    src = rig.source(generic(headers={"Cookie": "${WEIBO_COOKIE}"}, params={"access_token": "${API_TOKEN}"}))
    assert rig.config is not None and {cookie, token} <= rig.config.secrets
    log = io.StringIO()
    root = logging.getLogger()
    level = root.level
    setup_logging("debug", "text", rig.config.secrets, stream=log)
    try:
        assert rig.poll(src).status == OK
        rig.server.route("/api/search", Response(403, b"forbidden"))
        failed = rig.poll(src)
    finally:  # leave the root logger as it was: our handler out, the level back
        if monitor.logs._handler is not None:
            root.removeHandler(monitor.logs._handler)
            monitor.logs._handler = None
        root.setLevel(level)
    hits = rig.server.hits("/api/search")
    assert [(r.headers.get("cookie"), query(r)["access_token"]) for r in hits] == [(cookie, token)] * 2
    assert failed.status == BLOCKED and failed.error and token in failed.error  # the URL is in the message...
    text = log.getvalue()
    assert "event=source.polled" in text and "event=source.failed" in text
    assert "access_token=***" in text  # ...but not in the log
    assert cookie not in text and "SecretCookie" not in text and token not in text
    (health,) = rig.store.health()
    assert health.last_error and cookie not in health.last_error


# -- paging -----------------------------------------------------------------------------------------------------------

def test_page_paging_stops_at_the_first_item_already_seen(rig: Rig) -> None:
    """Pages 1..3 on the first poll; the next poll reads page 1 only, stopping at the first item it already has."""
    pages: dict[str, Any] = {str(n): {"data": {"list": [status(100 - 10 * n - i, f"第{n}页第{i}条") for i in range(2)]}}
                             for n in (1, 2, 3)}
    pages["4"] = {"data": {"list": []}}
    rig.server.route("/api/search", by_page(pages))
    src = rig.source(generic(params={"page": "{page}"}, max_pages=5))
    out = rig.poll(src)
    assert out.status == OK and out.new == 6
    assert [query(r)["page"] for r in rig.server.hits("/api/search")] == ["1", "2", "3", "4"]

    pages["1"] = {"data": {"list": [status(95, "新的一条"), *pages["1"]["data"]["list"]]}}
    again = rig.poll(src)
    assert again.status == OK and again.new == 1 and set(rig.posts()) >= {"95"}
    assert [query(r)["page"] for r in rig.server.hits("/api/search")][4:] == ["1"]


def test_cursor_paging_follows_next_page_and_stops_without_one(rig: Rig) -> None:
    """max_id={page} comes from each response's cursor; a response without one is the last page (no max_id=1)."""
    cursors = {
        ("甲", "0"): ([30, 29], 28), ("甲", "28"): ([28, 27], 0),
        ("乙", "0"): ([20], None),
    }

    def route(req: Request) -> Response:
        q = query(req)
        ids, nxt = cursors.get((q["q"], q["max_id"]), ([], None))
        data: dict[str, Any] = {"list": [status(i, f"{q['q']}{i}") for i in ids]}
        if nxt is not None:
            data["next_cursor"] = nxt
        return body({"data": data})

    rig.server.route("/api/search", route)
    src = rig.source(generic(keywords=["甲", "乙"], params={"q": "{keyword}", "max_id": "{page}"}, first_page=0,
                             max_pages=5, next_page="data.next_cursor"))
    out = rig.poll(src)
    assert out.status == OK and out.new == 5
    assert [(query(r)["q"], query(r)["max_id"]) for r in rig.server.hits("/api/search")] == [
        ("甲", "0"), ("甲", "28"), ("乙", "0")]


def test_since_param_asks_for_ids_above_the_largest_seen(rig: Rig) -> None:
    """The next poll sends since_id = the largest id stored by the previous one (not an embedded original's)."""
    big_original = status(99_999, "被转发的原帖")
    rig.server.route("/api/search", body({"data": {"list": [
        status(5012, "较新"), status(5007, "较旧", retweeted=big_original)]}}))
    src = rig.source(generic(since_param="since_id"))
    assert rig.poll(src).new == 3
    rig.server.route("/api/search", body({"data": {"list": [status(5020, "又一条")]}}))
    again = rig.poll(src)
    assert again.status == OK and again.new == 1
    first, second = rig.server.hits("/api/search")
    assert "since_id" not in query(first)
    assert query(second)["since_id"] == "5012"


# -- the API's own answers --------------------------------------------------------------------------------------------

OK_CHECK = {"path": "ok", "equals": 1, "message": "msg"}


def test_ok_failure_is_failing_with_the_apis_message(rig: Rig) -> None:
    """``ok: 0`` with a message: the source fails and says what the API said."""
    rig.server.route("/api/search", body({"ok": 0, "msg": "请求参数错误，containerid 无效"}, ascii_only=True))
    out = rig.poll(rig.source(generic(ok=OK_CHECK)))
    assert out.status == FAILING
    assert out.error and "ok=0" in out.error and "请求参数错误，containerid 无效" in out.error


@pytest.mark.parametrize("answer", [
    Response(200, "<html><head><title>登录</title></head><body>请先登录后再查看</body></html>".encode(),
             {"Content-Type": "text/html; charset=utf-8"}),
    Response(200, json.dumps({"ok": -100, "url": "https://passport.example.cn/signin/welcome?entry=mweibo"}).encode(),
             dict(JSON_TYPE)),
], ids=["html-login-page", "ok-minus-100-login-url"])
def test_login_answer_is_blocked(rig: Rig, answer: Response) -> None:
    """A login page instead of JSON, or the API's "log in first" answer, is ``blocked``, not "no posts"."""
    rig.server.route("/api/search", answer)
    out = rig.poll(rig.source(generic(ok=OK_CHECK)))
    assert out.status == BLOCKED, out.error
    assert out.error and "Cookie" in out.error


def test_changed_api_is_a_layout_alert_then_recovers(rig: Rig) -> None:
    """The items path missing from a good answer is ``layout`` (no crash); fixing the API brings the source back."""
    rig.server.route("/api/search", body({"ok": 1, "data": {"statuses": [status(1, "换了字段名")]}}))
    src = rig.source(generic(ok=OK_CHECK))
    out = rig.poll(src)
    assert out.status == LAYOUT
    assert out.error and "data.list[*]" in out.error and "try-source" in out.error
    assert rig.store.source_state("api").status == LAYOUT
    rig.server.route("/api/search", body({"ok": 1, "data": {"list": [status(1, "恢复了")]}}))
    assert rig.poll(src).status == OK and rig.store.source_state("api").status == OK


def test_items_without_ids_are_a_layout_alert(rig: Rig) -> None:
    """Items found but none with an id (the id field was renamed) is ``layout``, not a quiet zero."""
    rig.server.route("/api/search", body({"data": {"list": [{"mid": "1", "text": "a"}, {"mid": "2", "text": "b"}]}}))
    out = rig.poll(rig.source(generic()))
    assert out.status == LAYOUT and out.error and "fields.id" in out.error


@pytest.mark.parametrize("answer", [
    {"ok": 1, "data": {"list": []}},
    {"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}},
], ids=["empty-list", "api-says-no-results"])
def test_empty_result_is_ok_with_no_posts(rig: Rig, answer: dict[str, Any]) -> None:
    """An empty list (or the API's configured "no results" message) is a good poll with nothing new."""
    rig.server.route("/api/search", body(answer, ascii_only=True))
    out = rig.poll(rig.source(generic(ok=OK_CHECK, empty_marker="这里还没有内容")))
    assert (out.status, out.new, out.problems) == (OK, 0, [])


# -- HTTP trouble -----------------------------------------------------------------------------------------------------

def sequence(*responses: Response) -> Route:
    """A route answering the given responses in turn, then repeating the last one."""
    items = list(responses)
    lock = threading.Lock()

    def route(_req: Request) -> Response:
        with lock:
            return items.pop(0) if len(items) > 1 else items[0]
    return route


def test_429_retry_after_is_honoured(rig: Rig) -> None:
    """A short Retry-After is waited (recorded) and retried; a long one ends the poll and delays the next."""
    rig.http["retries"] = 2
    ok = body({"data": {"list": [status(7, "好了")]}})
    rig.server.route("/api/search", sequence(Response(429, b"slow down", {"Retry-After": "7"}), ok))
    src = rig.source(generic())
    out = rig.poll(src)
    assert out.status == OK and out.new == 1
    assert len(rig.sleeps) == 1 and rig.sleeps[0] >= 7
    assert len(rig.server.hits("/api/search")) == 2

    rig.server.route("/api/search", Response(429, b"slow down", {"Retry-After": "900"}))
    failed = rig.poll(src)
    assert failed.status == FAILING and failed.error and "HTTP 429" in failed.error
    state = rig.store.source_state("api")
    assert state.next_attempt_at is not None
    assert state.next_attempt_at - rig.clock.now() >= timedelta(seconds=890)


def test_timeout_is_failing(rig: Rig) -> None:
    """A server slower than the source's timeout fails the poll with "timed out", quickly."""
    rig.server.route("/api/search", Response(200, b'{"data": {"list": []}}', dict(JSON_TYPE), delay=1.5))
    out = rig.poll(rig.source(generic(timeout="0.3s")))
    assert out.status == FAILING and out.error and "timed out" in out.error


def test_oversized_response_is_failing(rig: Rig) -> None:
    """A response over the source's max_bytes is refused, not parsed."""
    big = {"data": {"list": [status(i, "很长的内容" * 50) for i in range(40)]}}
    rig.server.route("/api/search", body(big))
    out = rig.poll(rig.source(generic(max_bytes=4096)))
    assert out.status == FAILING and out.error and "cap" in out.error
    assert rig.store.count_posts("api") == 0


# -- the real recorded Weibo API --------------------------------------------------------------------------------------

WEIBO_OPEN_API = {
    "url": "{base}/2/search/topics.json?q={keyword}&count=50&page={page}", "keywords": ["春晚"], "max_pages": 4,
    "items": "statuses[*]", "nested": ["retweeted_status"],
    "fields": {"id": "idstr", "text": "text", "author": "user.screen_name", "author_id": "user.idstr",
               "published_at": "created_at", "reposts": "reposts_count", "comments": "comments_count",
               "likes": "attitudes_count", "followers": "user.followers_count"},
}


def _weibo_time(value: str) -> datetime:
    return datetime.strptime(value, "%a %b %d %H:%M:%S %z %Y").astimezone(UTC)


def test_real_recorded_weibo_api_pages(rig: Rig, shared_data: Path) -> None:
    """The 2017 open-API search pages (sfm-weibo-harvester's cassette, MIT): all 200 statuses stored with id, text,
    author, UTC time and counts equal to the raw JSON; retweeted originals stored and linked by repost_of."""
    folder = shared_data / "fixtures" / "weibo_api_search_topics"
    raw = {n: json.loads((folder / f"page{n}.json").read_text(encoding="utf-8")) for n in range(1, 5)}
    statuses = [s for n in range(1, 5) for s in raw[n]["statuses"]]
    rig.server.route("/2/search/topics.json", lambda req: Response(
        200, (folder / f"page{query(req)['page']}.json").read_bytes(), dict(JSON_TYPE)))
    out = rig.poll(rig.source(WEIBO_OPEN_API))
    assert out.status == OK, out.error
    assert [query(r)["page"] for r in rig.server.hits("/2/search/topics.json")] == ["1", "2", "3", "4"]
    assert {query(r)["q"] for r in rig.server.hits("/2/search/topics.json")} == {"春晚"}

    posts = rig.posts()
    originals = {s["retweeted_status"]["idstr"]: s["retweeted_status"] for s in statuses if "retweeted_status" in s}
    assert len(statuses) == 200 and len({s["idstr"] for s in statuses}) == 200
    assert set(posts) == {s["idstr"] for s in statuses} | set(originals)
    assert out.new == len(posts)
    for s in statuses:
        p = posts[s["idstr"]]
        assert p.text and p.author == s["user"]["screen_name"] and p.author_id == s["user"]["idstr"]
        assert p.published_at == _weibo_time(s["created_at"]) and p.published_at.utcoffset() == timedelta(0)
        assert (p.reposts, p.comments, p.likes) == (s["reposts_count"], s["comments_count"], s["attitudes_count"])
        assert p.extra["followers"] == s["user"]["followers_count"]
        if "retweeted_status" in s:
            assert p.extra["repost_of"] == s["retweeted_status"]["idstr"]
    for oid, o in originals.items():
        assert posts[oid].published_at == _weibo_time(o["created_at"])
        assert posts[oid].author == o["user"]["screen_name"]
    # A few spelled out against the raw values: the most reposted status, and a status with HTML entities if any.
    top = max(statuses, key=lambda s: s["reposts_count"])
    assert posts[top["idstr"]].reposts == top["reposts_count"] > 0
    assert sum(p.extra.get("repost_of") is not None for p in posts.values()) == sum(
        "retweeted_status" in s for s in statuses)


# -- pure parsing (no server): what the fetch path does not reach ------------------------------------------------------

def page_of(data: Any, url: str = "https://api.example.com/search?page=1", raw: bytes | None = None) -> Page:
    """A fetched page holding ``data`` as JSON (or ``raw`` bytes)."""
    content = raw if raw is not None else json.dumps(data, ensure_ascii=False).encode()
    return Page(url, 200, dict(JSON_TYPE), content, T0, meta={"role": "list", "index": 0})


def source_of(**over: Any) -> JsonSource:
    """A json source over data.list[*] with the generic field map."""
    options = {"name": "p", "type": "json", "url": "https://api.example.com/search?page={page}",
               "items": "data.list[*]", "fields": FIELDS, **over}
    return JsonSource(JsonConfig.model_validate(options))


def test_jsonp_is_unwrapped() -> None:
    """``callback({...});`` answers (common on Chinese news APIs) parse like plain JSON."""
    raw = b'/**/jsonp_1700000000({"data": {"list": [{"idstr": "1", "text": "\xe4\xbd\xa0\xe5\xa5\xbd"}]}});'
    result = source_of().parse(page_of(None, raw=raw))
    assert [(p.native_id, p.text) for p in result.posts] == [("1", "你好")]


def test_not_json_without_login_words_is_a_parse_error() -> None:
    """An HTML error page that is not a login wall fails the poll as "did not return JSON", naming its start."""
    with pytest.raises(ParseError, match=r"did not return JSON.*<html>"):
        source_of().parse(page_of(None, raw=b"<html><body>502 Bad Gateway</body></html>"))


def test_unreadable_times_are_reported_once_per_page() -> None:
    """Times that cannot be read are a page-level problem (the posts are kept, dated by the fetch time)."""
    items = [status(1, "a", created="上古时期"), status(2, "b", created="很久以前"), status(3, "c")]
    result = source_of().parse(page_of({"data": {"list": items}}))
    assert len(result.posts) == 3 and result.posts[0].published_at is None
    assert len(result.problems) == 1 and "2 item(s)" in result.problems[0] and "上古时期" in result.problems[0]


def test_next_page_can_be_read_from_a_url_by_regex() -> None:
    """``next_page: {path, regex}`` takes the page number out of a next-page URL (Discourse's more_topics_url)."""
    src = source_of(next_page={"path": "more", "regex": r"[?&]page=(\d+)"})
    data = {"data": {"list": [status(1, "a")]}, "more": "/c/x/5?page=3"}
    assert src.parse(page_of(data)).next_page == "3"
    assert src.parse(page_of({"data": {"list": [status(1, "a")]}})).next_page is None


def test_embedded_items_do_not_count_for_paging() -> None:
    """parse_list (what paging looks at) holds the items only; parse (what is stored) adds their originals."""
    src = source_of(nested=["retweeted"])
    page = page_of({"data": {"list": [status(2, "转发", retweeted=status(1, "原帖"))]}})
    assert [p.native_id for p in src.parse_list(page).posts] == ["2"]
    assert [p.native_id for p in src.parse(page).posts] == ["1", "2"]


@pytest.mark.parametrize(("options", "message"), [
    ({"items": "data..list"}, "cannot read path"),
    ({"nested": ["a[x]"]}, "cannot read path"),
    ({"next_page": {"regex": "x"}}, "needs a path"),
    ({"fields": {"id": {"path": "id", "template": "https://x/"}}}, "has no {value}"),
    ({"ok": {"path": ".ok"}}, "cannot read path"),
    ({"params": {"q": "{keyword}"}}, "no keywords"),
], ids=["items", "nested", "next_page", "template", "ok", "keyword-without-keywords"])
def test_bad_options_are_config_errors(options: dict[str, Any], message: str) -> None:
    """Broken paths and templates are refused when the config is loaded, with a hint."""
    with pytest.raises(ValueError, match=message):
        source_of(**options)


def test_layout_error_is_a_parse_error_subclass() -> None:
    """A missing items path raises LayoutError (the runner's ``layout`` state) from parse."""
    with pytest.raises(LayoutError):
        source_of().parse(page_of({"data": {}}))
