"""The shared HTTP client every source fetches through: politeness and robustness live here, once.

* per-host concurrency and a minimum interval between requests to one host;
* retries with exponential backoff and jitter on 429, 5xx, timeouts and connection errors, honouring Retry-After;
* robots.txt obeyed by default (cached per origin);
* conditional GET (ETag / Last-Modified), gzip, bounded redirects, timeouts, a response size cap, a clear User-Agent;
* proxies from config (global or per source) or the environment (HTTP_PROXY / HTTPS_PROXY / NO_PROXY).

Responses are returned as bytes in a :class:`~monitor.source.Page`; decoding is left to the parser, because httpx
decodes a page without a charset as UTF-8 and Chinese sites are often GBK.
"""

from __future__ import annotations

import asyncio
import contextlib
import email.utils
import logging
import random
import time
import zlib
from collections.abc import AsyncGenerator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from monitor.clock import Clock, SystemClock
from monitor.config import HttpConfig
from monitor.errors import BlockedError, FetchError, TooLargeError
from monitor.source import Page

log = logging.getLogger("monitor.http")

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504, 520, 521, 522, 523, 524})
#: Statuses Chinese sites (and CDNs) use to turn crawlers away: a distinct health state, not "no new posts".
BLOCK_STATUSES = frozenset({401, 403, 412, 418, 432})


@dataclass
class RequestOptions:
    """Per-request overrides, usually from a source's config."""

    headers: dict[str, str] = field(default_factory=dict)
    timeout: float | None = None
    max_bytes: int | None = None
    robots: bool | None = None
    proxy: str | None = None
    etag: str | None = None
    last_modified: str | None = None


class _HostGate:
    """Limits concurrency and spaces request starts for one host."""

    def __init__(self, concurrency: int, interval: float) -> None:
        self.sem = asyncio.Semaphore(concurrency)
        self.interval = interval
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait_turn(self) -> None:
        async with self._lock:
            now = time.monotonic()
            delay = self._next - now
            self._next = max(now, self._next) + self.interval
        if delay > 0:
            await asyncio.sleep(delay)


class HttpClient:
    """One per daemon; safe to share between all source jobs on one event loop."""

    def __init__(self, config: HttpConfig, *, clock: Clock | None = None,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
                 transport: httpx.AsyncBaseTransport | None = None) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self._sleep = sleep
        self._transport = transport
        self._clients: dict[str | None, httpx.AsyncClient] = {}
        self._gates: dict[str, _HostGate] = {}
        self._robots: dict[str, tuple[float, RobotFileParser | None]] = {}
        self._robots_locks: dict[str, asyncio.Lock] = {}

    async def aclose(self) -> None:
        """Close every pooled connection."""
        for client in self._clients.values():
            await client.aclose()
        self._clients.clear()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def _client(self, proxy: str | None) -> httpx.AsyncClient:
        proxy = proxy or self.config.proxy
        client = self._clients.get(proxy)
        if client is None:
            client = httpx.AsyncClient(
                headers={"User-Agent": self.config.user_agent, "Accept-Encoding": "gzip, deflate"},
                follow_redirects=True,
                max_redirects=self.config.max_redirects,
                timeout=httpx.Timeout(self.config.timeout, connect=self.config.connect_timeout),
                limits=httpx.Limits(max_connections=200, max_keepalive_connections=50),
                proxy=proxy,
                trust_env=proxy is None,
                transport=self._transport,
            )
            self._clients[proxy] = client
        return client

    def _gate(self, url: str) -> _HostGate:
        host = urlsplit(url).netloc.lower()
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _HostGate(self.config.per_host_concurrency, self.config.per_host_interval)
        return gate

    async def get(self, url: str, options: RequestOptions | None = None) -> Page:
        """GET ``url`` politely; return a Page (``not_modified`` on 304) or raise a FetchError subclass."""
        opts = options or RequestOptions()
        robots = self.config.respect_robots if opts.robots is None else opts.robots
        if robots and not await self.allowed_by_robots(url, opts):
            raise BlockedError(f"robots.txt of {urlsplit(url).netloc} disallows {url} for our User-Agent; "
                               f"set robots: false on this source only with the site's permission",
                               url=url, retryable=False)
        headers = dict(opts.headers)
        if opts.etag:
            headers["If-None-Match"] = opts.etag
        if opts.last_modified:
            headers["If-Modified-Since"] = opts.last_modified
        attempt = 0
        while True:
            try:
                return await self._once(url, headers, opts)
            except FetchError as exc:
                if not exc.retryable or isinstance(exc, BlockedError | TooLargeError) or attempt >= self.config.retries:
                    raise
                delay = self._backoff(attempt)
                if exc.retry_after is not None:
                    if exc.retry_after > self.config.max_retry_after:
                        raise  # the runner delays the next poll instead of blocking this job for long
                    delay = max(delay, exc.retry_after)
                attempt += 1
                log.debug("retry %s in %.1fs after: %s", url, delay, exc)
                await self._sleep(delay)

    def _backoff(self, attempt: int) -> float:
        base = min(self.config.backoff * (2 ** attempt), self.config.backoff_max)
        return base / 2 + random.uniform(0, base / 2)  # "equal jitter": spreads retries, keeps a floor

    async def _once(self, url: str, headers: dict[str, str], opts: RequestOptions) -> Page:
        gate = self._gate(url)
        cap = opts.max_bytes or self.config.max_bytes
        timeout = opts.timeout or self.config.timeout
        async with gate.sem:
            await gate.wait_turn()
            try:
                client = self._client(opts.proxy)
                req = client.build_request(
                    "GET", url, headers=headers, timeout=httpx.Timeout(timeout, connect=self.config.connect_timeout))
                # The overall deadline covers the whole body: a server that trickles bytes forever is a timeout too.
                response = await asyncio.wait_for(self._send(client, req, cap, url), timeout=timeout * 2 + 1)
            except TimeoutError:
                raise FetchError(f"timed out after {timeout:g}s fetching {url}; the site may be slow or down",
                                 url=url) from None
            except httpx.TimeoutException:
                raise FetchError(f"timed out after {timeout:g}s fetching {url}; the site may be slow or down",
                                 url=url) from None
            except httpx.TooManyRedirects:
                # A redirect loop does not heal within one poll: retrying it at once only repeats the loop.
                raise FetchError(f"too many redirects (> {self.config.max_redirects}) fetching {url}; "
                                 f"the URL may loop or need a login", url=url, retryable=False) from None
            except httpx.DecodingError as exc:
                raise FetchError(f"cannot decode the body of {url} ({exc}); the server sent a corrupt compressed "
                                 f"response", url=url, retryable=False) from None
            except httpx.InvalidURL as exc:
                raise FetchError(f"invalid URL {url}: {exc}", url=url, retryable=False) from None
            except httpx.TransportError as exc:
                raise FetchError(f"cannot connect to {urlsplit(url).netloc} ({type(exc).__name__}: {exc}); "
                                 f"check the URL, DNS and proxy", url=url) from None
        status, resp_headers, body, final_url = response
        if status == 304:
            return Page(final_url, status, resp_headers, b"", self.clock.now(), not_modified=True)
        if status in RETRY_STATUSES:
            raise FetchError(f"HTTP {status} from {url}", url=url, status=status,
                             retry_after=_retry_after(resp_headers.get("retry-after"), self.clock))
        if status in BLOCK_STATUSES:
            raise BlockedError(f"HTTP {status} from {url}: the site refuses us (login wall, captcha or anti-bot); "
                               f"check cookies/headers in the source's config or lower its rate",
                               url=url, status=status)
        if status >= 400:
            raise FetchError(f"HTTP {status} from {url}; check the URL", url=url, status=status,
                             retryable=status >= 500)
        return Page(final_url, status, resp_headers, body, self.clock.now())

    async def _send(self, client: httpx.AsyncClient, req: httpx.Request, cap: int,
                    url: str) -> tuple[int, dict[str, str], bytes, str]:
        response = await client.send(req, stream=True)
        try:
            headers = {k.lower(): v for k, v in response.headers.items()}
            declared = headers.get("content-length", "")
            if declared.isdigit() and int(declared) > cap:
                raise TooLargeError(f"response of {url} is {int(declared):,} bytes, over the {cap:,}-byte cap; "
                                    f"raise max_bytes for this source if that is expected", url=url, retryable=False)
            chunks: list[bytes] = []
            size = 0
            async with contextlib.aclosing(_decoded(response, cap, url)) as body:
                async for chunk in body:  # decoded bytes: a gzip bomb hits the cap too
                    size += len(chunk)
                    if size > cap:
                        raise TooLargeError(f"response of {url} exceeds the {cap:,}-byte cap; raise max_bytes for "
                                            f"this source if that is expected", url=url, retryable=False)
                    chunks.append(chunk)
            return response.status_code, headers, b"".join(chunks), str(response.url)
        finally:
            await response.aclose()

    async def allowed_by_robots(self, url: str, opts: RequestOptions | None = None) -> bool:
        """Whether robots.txt of ``url``'s origin lets our User-Agent fetch it (cached for ``robots_ttl``)."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        lock = self._robots_locks.setdefault(origin, asyncio.Lock())
        async with lock:
            cached = self._robots.get(origin)
            now = time.monotonic()
            if cached is None or now - cached[0] > self.config.robots_ttl:
                parser = await self._load_robots(origin, opts or RequestOptions())
                cached = (now, parser)
                self._robots[origin] = cached
        parser = cached[1]
        return True if parser is None else parser.can_fetch(self.config.user_agent, url)

    async def _load_robots(self, origin: str, opts: RequestOptions) -> RobotFileParser | None:
        robots_url = origin + "/robots.txt"
        try:
            page = await self._once(robots_url, {}, RequestOptions(timeout=opts.timeout, proxy=opts.proxy,
                                                                   max_bytes=512_000))
        except BlockedError:
            return None  # RFC 9309 2.3.1.3: 4xx "unavailable" means no restrictions
        except FetchError as exc:
            if exc.status is not None and 400 <= exc.status < 500 and exc.status != 429:
                return None
            raise FetchError(f"robots.txt of {origin} is unreachable ({exc}); not crawling until it answers",
                             url=robots_url) from None
        parser = RobotFileParser()
        parser.parse(page.content.decode("utf-8", errors="replace").splitlines())
        return parser


_WBITS = {"gzip": 16 + zlib.MAX_WBITS, "x-gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS}


async def _decoded(response: httpx.Response, cap: int, url: str) -> AsyncGenerator[bytes, None]:
    """The body with gzip/deflate undone in pieces of at most ``cap + 1`` bytes.

    httpx inflates each network chunk whole: 64 KB of gzip can be 64 MB, and gzip inside gzip (``Content-Encoding:
    gzip, gzip``) a few KB that inflate to gigabytes before any size check could run. Other codings (we only ask for
    gzip and deflate) are left to httpx.
    """
    codings = [c.strip().lower() for c in response.headers.get("content-encoding", "").split(",")]
    codings = [c for c in codings if c and c != "identity"]
    if not all(c in _WBITS for c in codings):
        async for chunk in response.aiter_bytes():
            yield chunk
        return
    stages = [_Inflater(c, url) for c in reversed(codings)]  # the last coding applied is undone first
    async for raw in response.aiter_raw():
        pieces: Iterator[bytes] = iter((raw,))
        for stage in stages:
            pieces = stage.feed(pieces, cap + 1)
        for piece in pieces:
            yield piece


class _Inflater:
    """Undoes one gzip or deflate coding, never producing more than ``limit`` bytes per piece."""

    def __init__(self, coding: str, url: str) -> None:
        self.coding, self.url = coding, url
        self.obj = zlib.decompressobj(_WBITS[coding])
        self.started = False

    def feed(self, pieces: Iterator[bytes], limit: int) -> Iterator[bytes]:
        for data in pieces:
            while data or self.obj.unconsumed_tail:
                data = data or self.obj.unconsumed_tail
                try:
                    out = self.obj.decompress(data, limit)
                except zlib.error as exc:
                    if self.coding == "deflate" and not self.started:  # many servers send raw deflate
                        self.started, self.obj = True, zlib.decompressobj(-zlib.MAX_WBITS)
                        continue
                    raise FetchError(f"cannot decode the body of {self.url} ({self.coding}: {exc}); the server "
                                     f"sent a corrupt compressed response", url=self.url, retryable=False) from None
                self.started = True
                data = b""
                if out:
                    yield out
                while len(out) == limit and not self.obj.unconsumed_tail:  # output may still be pending inside zlib
                    out = self.obj.decompress(b"", limit)
                    if out:
                        yield out


def _retry_after(value: str | None, clock: Clock) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or HTTP-date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - clock.now()).total_seconds())
