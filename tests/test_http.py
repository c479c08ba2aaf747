"""The shared HTTP client against real servers on 127.0.0.1.

Covers headers (User-Agent, gzip, conditional GET), redirects, timeouts and the overall deadline, retries with
backoff and Retry-After (delays are recorded by an injected ``sleep``, never waited), block statuses, the size cap
(declared, streamed and decompressed), robots.txt, per-host concurrency and proxies.
"""

from __future__ import annotations

import asyncio
import email.utils
import gzip
import http.client
import itertools
import threading
import tracemalloc
import zlib
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TypeVar
from urllib.parse import urlsplit

import pytest

from monitor.clock import ManualClock
from monitor.config import HttpConfig
from monitor.errors import BlockedError, FetchError, TooLargeError
from monitor.http import HttpClient, RequestOptions
from monitor.source import Page
from tests.loopback import LoopbackServer, Request, Response

T = TypeVar("T")
UA = "monitor-test/1.0 (loopback tests)"


@pytest.fixture(autouse=True)
def _no_env_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A proxy in the developer's environment must not capture requests to 127.0.0.1."""
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy"):
        monkeypatch.delenv(var, raising=False)


class Sleeps(list[float]):
    """An injected ``sleep`` that records the delays instead of waiting."""

    async def __call__(self, seconds: float) -> None:
        self.append(seconds)


def http_config(**overrides: Any) -> HttpConfig:
    """Test defaults: no spacing between requests, short timeouts, a recognisable User-Agent."""
    values: dict[str, Any] = {"per_host_interval": 0, "timeout": 1.0, "connect_timeout": 1.0, "user_agent": UA}
    values.update(overrides)
    return HttpConfig(**values)


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a coroutine on a fresh event loop (pytest-asyncio is deliberately not used)."""
    return asyncio.run(coro)


def with_client(body: Callable[[HttpClient], Coroutine[Any, Any, T]], *, sleeps: Sleeps | None = None,
                clock: ManualClock | None = None, **config: Any) -> T:
    """Open an HttpClient, run ``body`` with it, close it."""
    async def go() -> T:
        async with HttpClient(http_config(**config), sleep=sleeps if sleeps is not None else Sleeps(),
                              clock=clock) as client:
            return await body(client)
    return run(go())


def fetch(url: str, options: RequestOptions | None = None, *, sleeps: Sleeps | None = None,
          clock: ManualClock | None = None, **config: Any) -> Page:
    """One GET through a fresh client."""
    return with_client(lambda c: c.get(url, options), sleeps=sleeps, clock=clock, **config)


def fetch_error(url: str, options: RequestOptions | None = None, *, sleeps: Sleeps | None = None,
                **config: Any) -> FetchError:
    """One GET that must fail; return its FetchError."""
    with pytest.raises(FetchError) as info:
        fetch(url, options, sleeps=sleeps, **config)
    return info.value


def sequence(*responses: Response) -> Callable[[Request], Response]:
    """A route answering the given responses in turn, then repeating the last one."""
    it = itertools.chain(responses, itertools.repeat(responses[-1]))
    lock = threading.Lock()

    def route(_req: Request) -> Response:
        with lock:
            return next(it)
    return route


# -- headers, gzip, conditional GET, redirects -------------------------------------------------------------------

def test_user_agent_and_accept_encoding_sent(server: LoopbackServer) -> None:
    server.route("/ua", Response(200, b"ok"))
    page = fetch(server.url("/ua"))
    assert page.content == b"ok" and page.status == 200 and not page.not_modified
    (req,) = server.hits("/ua")
    assert req.headers["user-agent"] == UA
    assert "gzip" in req.headers["accept-encoding"]


def test_source_headers_are_sent(server: LoopbackServer) -> None:
    server.route("/h", Response(200, b"ok"))
    fetch(server.url("/h"), RequestOptions(headers={"Cookie": "sid=abc", "Referer": "https://example.com/"}))
    (req,) = server.hits("/h")
    assert req.headers["cookie"] == "sid=abc"
    assert req.headers["referer"] == "https://example.com/"


def test_gzip_body_is_decoded(server: LoopbackServer) -> None:
    text = "【投诉】澄川空调外机噪音大，售后三次上门未解决。".encode() * 50
    server.route("/gz", Response(200, text, {"Content-Type": "text/plain; charset=utf-8"}, gzip=True))
    page = fetch(server.url("/gz"))
    assert page.content == text
    assert page.headers["content-encoding"] == "gzip"
    assert page.content_type == "text/plain; charset=utf-8"


def test_conditional_get_sends_validators_and_304_is_not_modified(server: LoopbackServer) -> None:
    etag, modified = '"feed-v7"', "Sat, 21 Nov 2026 08:00:00 GMT"

    def route(req: Request) -> Response:
        if req.headers.get("if-none-match") == etag:
            return Response(304, headers={"ETag": etag})
        return Response(200, b"<rss/>", {"ETag": etag, "Last-Modified": modified})

    server.route("/feed", route)
    first = fetch(server.url("/feed"))
    assert first.headers["etag"] == etag and first.headers["last-modified"] == modified
    assert "if-none-match" not in server.hits("/feed")[0].headers

    second = fetch(server.url("/feed"), RequestOptions(etag=etag, last_modified=modified))
    req = server.hits("/feed")[1]
    assert req.headers["if-none-match"] == etag
    assert req.headers["if-modified-since"] == modified
    assert second.not_modified and second.status == 304 and second.content == b""


def test_redirect_is_followed(server: LoopbackServer) -> None:
    server.route("/old", Response(301, headers={"Location": "/moved/new"}))
    server.route("/moved/new", Response(200, b"here"))
    page = fetch(server.url("/old"))
    assert page.content == b"here"
    assert page.url == server.url("/moved/new")
    assert len(server.hits("/moved/new")) == 1


def test_endless_redirect_loop_is_a_clear_error(server: LoopbackServer) -> None:
    server.route("/loop", Response(302, headers={"Location": "/loop"}))
    sleeps = Sleeps()
    exc = fetch_error(server.url("/loop"), sleeps=sleeps, max_redirects=3, retries=2)
    assert "too many redirects" in str(exc)
    assert not isinstance(exc, BlockedError | TooLargeError)
    # A loop does not heal within one poll: no retries, just the first request and its 3 redirects.
    assert len(server.hits("/loop")) == 4
    assert sleeps == []


def test_broken_gzip_body_is_a_fetch_error(server: LoopbackServer) -> None:
    server.route("/badgz", Response(200, b"this is not gzip at all", {"Content-Encoding": "gzip"}))
    exc = fetch_error(server.url("/badgz"), retries=1)
    assert "decode" in str(exc).lower()
    assert exc.retryable is False
    assert len(server.hits("/badgz")) == 1


# -- timeouts ----------------------------------------------------------------------------------------------------

def test_server_slower_than_timeout_times_out_and_is_retried(server: LoopbackServer) -> None:
    server.route("/slow", Response(200, b"late", delay=3.0))
    sleeps = Sleeps()
    exc = fetch_error(server.url("/slow"), RequestOptions(timeout=0.3), sleeps=sleeps, retries=1)
    assert "timed out after 0.3s" in str(exc)
    assert exc.retryable and exc.status is None
    assert len(server.hits("/slow")) == 2
    assert len(sleeps) == 1


def test_trickling_body_ends_at_the_overall_deadline(server: LoopbackServer) -> None:
    # Each chunk comes well within the read timeout, so only the overall deadline can end this.
    server.route("/trickle", lambda _r: Response(200, chunks=itertools.repeat(b"<item>..</item>"), chunk_delay=0.05))
    exc = fetch_error(server.url("/trickle"), RequestOptions(timeout=0.3), retries=0)
    assert "timed out" in str(exc)
    assert len(server.hits("/trickle")) == 1


def test_connection_refused_is_a_retryable_fetch_error() -> None:
    srv = LoopbackServer()  # bound, then closed: nothing listens on the port any more
    url = srv.url("/gone")
    srv.httpd.server_close()
    sleeps = Sleeps()
    exc = fetch_error(url, RequestOptions(robots=False), sleeps=sleeps, retries=2)
    assert "cannot connect to 127.0.0.1" in str(exc)
    assert exc.retryable and len(sleeps) == 2


# -- retries -----------------------------------------------------------------------------------------------------

def test_503_then_200_succeeds_after_growing_backoff(server: LoopbackServer) -> None:
    server.route("/flaky", sequence(Response(503), Response(503), Response(503), Response(200, b"finally")))
    sleeps = Sleeps()
    page = fetch(server.url("/flaky"), sleeps=sleeps, retries=3, backoff=1.0, backoff_max=30.0)
    assert page.content == b"finally"
    assert len(server.hits("/flaky")) == 4
    assert len(sleeps) == 3
    for attempt, delay in enumerate(sleeps):  # equal jitter: between half and all of backoff * 2^attempt
        base = 1.0 * 2 ** attempt
        assert base / 2 <= delay <= base, (attempt, delay)
    assert sleeps[0] <= sleeps[1] <= sleeps[2]


def test_backoff_is_jittered_and_capped() -> None:
    client = HttpClient(http_config(backoff=1.0, backoff_max=5.0))
    samples = [client._backoff(attempt) for attempt in range(8) for _ in range(50)]
    assert all(0.5 <= s <= 5.0 for s in samples)
    late = [client._backoff(6) for _ in range(50)]
    assert all(2.5 <= s <= 5.0 for s in late)  # capped at backoff_max, still with a floor of half of it
    assert len(set(late)) > 1  # jitter: retries of many jobs do not fire in lock step


def test_429_retry_after_is_honoured(server: LoopbackServer) -> None:
    server.route("/limited", sequence(Response(429, headers={"Retry-After": "2"}), Response(200, b"ok")))
    sleeps = Sleeps()
    page = fetch(server.url("/limited"), sleeps=sleeps, backoff=0.01, retries=3)
    assert page.content == b"ok"
    assert len(sleeps) == 1 and sleeps[0] >= 2.0
    assert len(server.hits("/limited")) == 2


def test_429_retry_after_http_date(server: LoopbackServer) -> None:
    clock = ManualClock(datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    when = email.utils.format_datetime(clock.now() + timedelta(seconds=7), usegmt=True)
    server.route("/limited", sequence(Response(429, headers={"Retry-After": when}), Response(200, b"ok")))
    sleeps = Sleeps()
    fetch(server.url("/limited"), sleeps=sleeps, clock=clock, backoff=0.01)
    assert sleeps == [pytest.approx(7.0)]


def test_429_retry_after_too_long_raises_at_once(server: LoopbackServer) -> None:
    server.route("/limited", Response(429, headers={"Retry-After": "600"}))
    sleeps = Sleeps()
    exc = fetch_error(server.url("/limited"), sleeps=sleeps, max_retry_after=120, retries=3)
    assert exc.status == 429 and exc.retry_after == 600.0
    assert sleeps == []
    assert len(server.hits("/limited")) == 1


def test_500_forever_exhausts_retries(server: LoopbackServer) -> None:
    server.route("/broken", Response(500, b"oops"))
    sleeps = Sleeps()
    exc = fetch_error(server.url("/broken"), sleeps=sleeps, retries=2)
    assert exc.status == 500 and exc.retryable
    assert "HTTP 500" in str(exc)
    assert len(server.hits("/broken")) == 3
    assert len(sleeps) == 2


@pytest.mark.parametrize("status", [401, 403, 412, 418, 432])
def test_block_statuses_raise_blocked_without_retry(server: LoopbackServer, status: int) -> None:
    server.route("/wall", Response(status, b"denied"))
    sleeps = Sleeps()
    exc = fetch_error(server.url("/wall"), sleeps=sleeps, retries=3)
    assert isinstance(exc, BlockedError)
    assert exc.status == status and f"HTTP {status}" in str(exc)
    assert len(server.hits("/wall")) == 1 and sleeps == []


def test_404_is_not_retried(server: LoopbackServer) -> None:
    sleeps = Sleeps()
    exc = fetch_error(server.url("/missing"), sleeps=sleeps, retries=3)
    assert not isinstance(exc, BlockedError)
    assert exc.status == 404 and exc.retryable is False
    assert "check the URL" in str(exc)
    assert len(server.hits("/missing")) == 1 and sleeps == []


# -- the size cap ------------------------------------------------------------------------------------------------

def test_declared_content_length_over_cap(server: LoopbackServer) -> None:
    server.route("/big", Response(200, b"x" * 300_000))
    sleeps = Sleeps()
    exc = fetch_error(server.url("/big"), RequestOptions(max_bytes=100_000), sleeps=sleeps)
    assert isinstance(exc, TooLargeError)
    assert "300,000 bytes" in str(exc) and "100,000-byte cap" in str(exc)
    assert sleeps == [] and len(server.hits("/big")) == 1


def test_chunked_body_growing_past_cap_stops_reading(server: LoopbackServer) -> None:
    chunk = b"y" * 65536
    total = 800  # 50 MiB if the client read it all
    produced = [0]
    finished = threading.Event()

    def endless() -> Iterator[bytes]:
        try:
            for _ in range(total):
                produced[0] += 1
                yield chunk
        finally:
            finished.set()

    server.route("/stream", lambda _r: Response(200, chunks=endless()))
    exc = fetch_error(server.url("/stream"), RequestOptions(max_bytes=1_000_000))
    assert isinstance(exc, TooLargeError)
    assert "exceeds the 1,000,000-byte cap" in str(exc)
    assert finished.wait(10), "the server should notice the client hung up"
    # The client hung up after ~1 MB: the server got rid of at most what socket buffers hold, far from 50 MiB.
    assert produced[0] < total // 2, produced[0]


def test_gzip_bomb_hits_the_cap(server: LoopbackServer) -> None:
    bomb = b"\0" * 20_000_000
    server.route("/bomb", Response(200, bomb, gzip=True))
    exc = fetch_error(server.url("/bomb"), RequestOptions(max_bytes=1_000_000))
    assert isinstance(exc, TooLargeError)
    assert "1,000,000-byte cap" in str(exc)
    assert len(gzip.compress(bomb)) < 1_000_000  # small on the wire: only the decoded size can catch it


def test_gzip_inside_gzip_bomb_is_capped_while_inflating(server: LoopbackServer) -> None:
    # 200 MB of zeros, gzipped twice, is a few hundred bytes: inflating a whole chunk before checking would
    # allocate all of it at once.
    bomb = gzip.compress(gzip.compress(b"\0" * 200_000_000, 9), 9)
    assert len(bomb) < 2000
    server.route("/bomb2", Response(200, bomb, {"Content-Encoding": "gzip, gzip"}))
    tracemalloc.start()
    try:
        exc = fetch_error(server.url("/bomb2"), RequestOptions(max_bytes=1_000_000))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert isinstance(exc, TooLargeError)
    assert peak < 50_000_000, f"peak {peak:,} bytes while inflating"


def test_double_gzip_within_cap_is_decoded(server: LoopbackServer) -> None:
    text = "论坛精选：物业费上涨引发业主不满。".encode() * 2000
    server.route("/gz2", Response(200, gzip.compress(gzip.compress(text)), {"Content-Encoding": "gzip, gzip"}))
    assert fetch(server.url("/gz2")).content == text


@pytest.mark.parametrize("wbits", [zlib.MAX_WBITS, -zlib.MAX_WBITS], ids=["zlib", "raw"])
def test_deflate_body_is_decoded(server: LoopbackServer, wbits: int) -> None:
    text = "客服回复：已为您登记退款申请，请耐心等待。".encode() * 3000
    packer = zlib.compressobj(6, zlib.DEFLATED, wbits)
    server.route("/deflate", Response(200, packer.compress(text) + packer.flush(), {"Content-Encoding": "deflate"}))
    assert fetch(server.url("/deflate")).content == text


# -- robots.txt --------------------------------------------------------------------------------------------------

def test_robots_disallow_blocks_without_fetching(server: LoopbackServer) -> None:
    server.route("/robots.txt", Response(200, b"User-agent: *\nDisallow: /private/\n"))
    server.route("/private/list", Response(200, b"secret"))
    server.route("/public", Response(200, b"open"))

    async def body(client: HttpClient) -> bytes:
        with pytest.raises(BlockedError) as info:
            await client.get(server.url("/private/list"))
        assert "robots.txt" in str(info.value) and info.value.retryable is False
        return (await client.get(server.url("/public"))).content

    assert with_client(body) == b"open"
    assert server.hits("/private/list") == []
    assert len(server.hits("/robots.txt")) == 1  # cached per origin


def test_robots_group_for_our_user_agent(server: LoopbackServer) -> None:
    server.route("/robots.txt", Response(200, b"User-agent: monitor-test\nDisallow: /\n\nUser-agent: *\nAllow: /\n"))
    server.route("/page", Response(200, b"x"))
    exc = fetch_error(server.url("/page"))
    assert isinstance(exc, BlockedError)
    assert server.hits("/page") == []
    assert fetch(server.url("/page"), user_agent="otherbot/2.0").content == b"x"


def test_robots_404_allows_everything(server: LoopbackServer) -> None:
    server.route("/anything/deep", Response(200, b"fine"))
    assert fetch(server.url("/anything/deep")).content == b"fine"
    assert len(server.hits("/robots.txt")) == 1


def test_robots_5xx_means_do_not_crawl(server: LoopbackServer) -> None:
    server.route("/robots.txt", Response(503))
    server.route("/page", Response(200, b"x"))
    exc = fetch_error(server.url("/page"))
    assert "robots.txt" in str(exc) and "unreachable" in str(exc)
    assert server.hits("/page") == []


def test_robots_is_fetched_once_per_origin(server: LoopbackServer) -> None:
    for i in range(3):
        server.route(f"/p{i}", Response(200, b"x"))

    async def body(client: HttpClient) -> None:
        for i in range(3):
            await client.get(server.url(f"/p{i}"))
        await asyncio.gather(*(client.get(server.url(f"/p{i}")) for i in range(3)))

    with_client(body)
    assert len(server.hits("/robots.txt")) == 1
    assert all(len(server.hits(f"/p{i}")) == 2 for i in range(3))


def test_robots_false_skips_robots(server: LoopbackServer) -> None:
    server.route("/robots.txt", Response(200, b"User-agent: *\nDisallow: /\n"))
    server.route("/allowed-by-owner", Response(200, b"ok"))
    assert fetch(server.url("/allowed-by-owner"), RequestOptions(robots=False)).content == b"ok"
    assert server.hits("/robots.txt") == []
    assert fetch(server.url("/allowed-by-owner"), respect_robots=False).content == b"ok"
    assert server.hits("/robots.txt") == []


# -- per-host concurrency ----------------------------------------------------------------------------------------

def test_per_host_concurrency_is_bounded(server: LoopbackServer) -> None:
    cond = threading.Condition()
    state = {"active": 0, "peak": 0}

    def slow(_req: Request) -> Response:
        with cond:
            state["active"] += 1
            state["peak"] = max(state["peak"], state["active"])
            cond.notify_all()
            # Hold the slot until a third request is in (which a client over the limit lets happen) or a while
            # passes: the requests overlap for sure, and the peak shows the client's limit.
            cond.wait_for(lambda: state["active"] > 2, timeout=0.3)
        with cond:
            state["active"] -= 1
        return Response(200, b"done")

    server.route("/slow", slow)

    async def body(client: HttpClient) -> list[Page]:
        return await asyncio.gather(*(client.get(server.url(f"/slow?n={i}")) for i in range(6)))

    pages = with_client(body, per_host_concurrency=2, timeout=5.0)
    assert [p.content for p in pages] == [b"done"] * 6
    assert len(server.hits("/slow")) == 6
    assert state["peak"] == 2


# -- proxies -----------------------------------------------------------------------------------------------------

class ForwardProxy:
    """A minimal HTTP forward proxy on 127.0.0.1: takes absolute-URI GETs, relays them, records what it saw."""

    HOP = frozenset({"connection", "proxy-connection", "keep-alive", "transfer-encoding", "content-length",
                     "proxy-authorization", "te", "trailer", "upgrade"})

    def __init__(self) -> None:
        self.seen: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                proxy.seen.append(self.path)
                target = urlsplit(self.path)
                if not target.hostname:
                    self.send_error(400, "not an absolute URI: I am a proxy")
                    return
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ForwardProxy.HOP}
                headers["Via"] = "1.1 test-proxy"
                conn = http.client.HTTPConnection(target.hostname, target.port or 80, timeout=5)
                try:
                    conn.request("GET", target.path + (f"?{target.query}" if target.query else ""), headers=headers)
                    upstream = conn.getresponse()
                    body = upstream.read()
                    self.send_response(upstream.status)
                    for k, v in upstream.getheaders():
                        if k.lower() not in ForwardProxy.HOP:
                            self.send_header(k, v)
                    self.send_header("X-Proxied-By", "test-proxy")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                finally:
                    conn.close()

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving."""
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    """A forward proxy on loopback."""
    p = ForwardProxy()
    try:
        yield p
    finally:
        p.stop()


@pytest.mark.parametrize("where", ["config", "options"])
def test_configured_proxy_is_used(server: LoopbackServer, proxy: ForwardProxy, where: str) -> None:
    server.route("/via", Response(200, "经代理".encode()))
    if where == "config":
        page = fetch(server.url("/via"), proxy=proxy.url)
    else:
        page = fetch(server.url("/via"), RequestOptions(proxy=proxy.url))
    assert page.content == "经代理".encode()
    assert page.headers["x-proxied-by"] == "test-proxy"
    assert server.url("/via") in proxy.seen  # the absolute URI: a forward-proxy request
    assert server.url("/robots.txt") in proxy.seen  # robots goes through the proxy as well
    (req,) = server.hits("/via")
    assert req.headers["via"] == "1.1 test-proxy"
    assert req.headers["user-agent"] == UA
