"""Operations: /healthz, /readyz, /metrics (no login, see docs/web.md), and running the server on a socket.

The server is uvicorn on a socket we bind ourselves: a port already in use is then an ``OSError`` we report,
rather than uvicorn calling ``sys.exit`` inside the daemon's event loop, and port 0 works for tests. Inside
``monitor run`` the server must not take over SIGTERM/SIGINT (the daemon owns them), hence :class:`EmbeddedServer`.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import socket
from collections.abc import Iterator
from typing import Any, Protocol

import uvicorn
from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from sqlalchemy import func, select, text

from monitor.db.schema import notifications, sources
from monitor.metrics import render
from monitor.web.api import State, WebState, run_db

log = logging.getLogger("monitor.web")
router = APIRouter(tags=["ops"])
#: /readyz gives the database this long to answer.
READY_TIMEOUT = 5.0


class Runtime(Protocol):
    """What the daemon tells the console about itself (``monitor serve`` has none)."""

    def readiness(self) -> list[str]:
        """Problems that make the process not ready (empty: ready), e.g. the scheduler is not running."""
        ...


def _database_ok(state: WebState) -> None:
    with state.engine.connect() as conn:
        conn.execute(text("SELECT 1"))


def _scrape(state: WebState) -> tuple[dict[str, int], dict[str, str]]:
    with state.engine.connect() as conn:
        backlog = {r[0]: int(r[1]) for r in conn.execute(
            select(notifications.c.status, func.count()).group_by(notifications.c.status))}
        status = {r[0]: r[1] for r in conn.execute(select(sources.c.name, sources.c.status)
                                                   .where(sources.c.status != "removed"))}
    return backlog, status


@router.get("/healthz", summary="The process is up (no login)")
async def healthz() -> dict[str, str]:
    """Always 200 while the process serves requests."""
    return {"status": "ok"}


@router.get("/readyz", summary="The database answers and (under `monitor run`) the scheduler runs (no login)",
            responses={503: {"description": "not ready: problems lists what is wrong"}})
async def readyz(state: State) -> JSONResponse:
    """200 {"status": "ready"} or 503 {"status": "unavailable", "problems": [...]}."""
    import anyio

    problems: list[str] = []
    try:
        with anyio.fail_after(READY_TIMEOUT):
            await run_db(_database_ok, state)
    except TimeoutError:
        problems.append(f"database: no answer within {READY_TIMEOUT:.0f} s")
    except Exception as exc:  # connection refused, file gone: say which, without the URL's credentials
        problems.append(f"database: {type(exc).__name__}: {str(exc).splitlines()[0][:200] if str(exc) else ''}")
    if state.runtime is not None:
        problems += state.runtime.readiness()
    if problems:
        return JSONResponse({"status": "unavailable", "problems": problems}, status_code=503)
    return JSONResponse({"status": "ready", "problems": []})


@router.get("/metrics", summary="Prometheus metrics (no login)", response_class=Response,
            responses={200: {"content": {"text/plain": {}}}})
async def metrics(state: State) -> Response:
    """Counters of this process plus the outbox backlog and source health read from the database now."""
    try:
        backlog, status = await run_db(_scrape, state)
    except Exception:  # the database is away: still serve the counters (readyz says what is wrong)
        backlog, status = {}, {}
    return Response(render(backlog, status), media_type="text/plain; version=0.0.4; charset=utf-8")


# -- serving ---------------------------------------------------------------------------------------------------------
def is_loopback(host: str) -> bool:
    """Whether ``host`` (from web.listen) only accepts connections from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def refuse_reason(config: Any) -> str | None:
    """Why the console must not start (no users on a non-loopback address), or None."""
    web = config.web
    if not web.users and not is_loopback(web.host):
        return (f"web.listen is {web.listen} but no web.users are configured: the console would be open to the "
                f"network. Add a user (`monitor web hash-password` prints the password_hash) or listen on "
                f"127.0.0.1.")
    return None


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port (port 0: any free port); OSError when the port is taken."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(address)
        sock.listen(128)
        sock.setblocking(False)
    except OSError:
        sock.close()
        raise
    return sock


def server_config(app: Any) -> uvicorn.Config:
    """uvicorn settings: our logging (no access log: it would record paths and client addresses of every poll of
    the console), no lifespan (the app has no start-up work), a short graceful shutdown."""
    return uvicorn.Config(app, log_config=None, access_log=False, lifespan="off", timeout_graceful_shutdown=5,
                          server_header=False, proxy_headers=False)


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (the daemon)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        """The daemon installed its own SIGTERM/SIGINT handlers; keep them."""
        yield


def startup_warnings(config: Any) -> list[str]:
    """What to tell the operator when the console starts: no users, hashes that are not hashes, plain http."""
    from monitor.web.auth import is_password_hash

    web, out = config.web, []
    if not web.users:
        out.append("no web.users configured; add one with `monitor web hash-password`. Until then the console "
                   "answers 401 to every API call and serves only /healthz, /readyz and /metrics.")
    out += [f"web.users[{i}] ({u.name}): password_hash is not a scrypt hash from `monitor web hash-password`; this "
            f"user cannot log in" for i, u in enumerate(web.users) if not is_password_hash(u.password_hash)]
    out += [f"web.tokens[{i}] ({t.name}): token_hash is not a scrypt hash from `monitor web new-token`; this token "
            f"is refused" for i, t in enumerate(web.tokens) if not is_password_hash(t.token_hash)]
    if not is_loopback(web.host) and not config.alerts.console_url.lower().startswith("https://") \
            and not web.secure_cookies:
        out.append(f"the console listens on {web.listen} over plain HTTP: passwords and cookies cross the network "
                   f"in clear. Put it behind an HTTPS reverse proxy and set alerts.console_url to the https URL.")
    return out
