"""What every API module shares: the app's state, errors as ``{"error", "code"}``, authentication and roles, running
database calls off the event loop, and times in the display timezone.

Request handlers are ``async`` and hand every database call to a worker thread (:func:`run_db`): under
``monitor run`` the console shares the daemon's event loop, and a blocking query there would delay polls and
deliveries. SQLite's WAL lets these readers run beside the daemon's writer thread; the console's own writes
(acknowledge, move a ticket) are short transactions that wait on the busy timeout at worst.
"""

from __future__ import annotations

import hmac
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING, Annotated, Any, TypeVar
from zoneinfo import ZoneInfo

import anyio.to_thread
from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy.engine import Engine
from starlette.exceptions import HTTPException as StarletteHTTPException

from monitor.clock import Clock
from monitor.logs import event
from monitor.web.auth import Credentials, LoginLimiter, Principal, SessionStore, role_at_least

if TYPE_CHECKING:
    from alerts.queue import TicketQueue
    from monitor.config import Config
    from monitor.db.store import Store

log = logging.getLogger("monitor.web")
T = TypeVar("T")

#: The session cookie's name (HttpOnly, SameSite=Strict; Secure on https).
SESSION_COOKIE = "monitor_session"
#: The header a cookie-authenticated unsafe request must carry, equal to the session's CSRF token.
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
NO_USERS = ("未配置 web.users，控制台已锁定；用 `monitor web hash-password` 生成密码哈希后添加用户 / "
            "no web.users configured; add one with `monitor web hash-password`")


class ApiError(Exception):
    """An answer other than 2xx: HTTP status, a machine code and a bilingual message."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


def not_found(what: str, ref: object) -> ApiError:
    """404 for an unknown incident, ticket, source or silence."""
    zh = {"incident": "事件", "ticket": "工单", "source": "信息源", "silence": "静默规则"}.get(what, what)
    return ApiError(404, "not_found", f"没有{zh} {ref} / no {what} {ref}")


@dataclass
class WebState:
    """Everything a request handler needs, kept on ``app.state.web``."""

    config: Config
    engine: Engine
    clock: Clock
    runtime: Any = None
    sessions: SessionStore = field(init=False)
    limiter: LoginLimiter = field(init=False)
    credentials: Credentials = field(init=False)

    def __post_init__(self) -> None:
        web = self.config.web
        self.sessions = SessionStore(web.session_ttl)
        self.limiter = LoginLimiter(web.login_attempts, web.login_lockout)
        self.credentials = Credentials(web)

    @property
    def tz(self) -> ZoneInfo:
        """The display timezone (``config.timezone``)."""
        return ZoneInfo(self.config.timezone)

    @property
    def locked(self) -> bool:
        """No users configured: the API answers 401 to everything (only the ops endpoints work)."""
        return not self.config.web.users

    @property
    def secure_cookies(self) -> bool:
        """Whether cookies get the Secure flag: as configured, else when the console's URL is https."""
        flag = self.config.web.secure_cookies
        return flag if flag is not None else self.config.alerts.console_url.lower().startswith("https://")

    def set_config(self, config: Config) -> None:
        """Take a reloaded config: new users and tokens apply at once; removed users' sessions end."""
        old = self.credentials.users
        self.config = config
        self.credentials = Credentials(config.web)
        for name, user in old.items():
            now = self.credentials.users.get(name)
            if now is None or now.password_hash != user.password_hash:
                self.sessions.drop_user(name)
            elif now.role != user.role:
                self.sessions.drop_user(name, role=now.role)

    def store(self) -> Store:
        """The store over this engine (source health, posts)."""
        from monitor.db.store import Store

        return Store(self.engine)

    def queue(self) -> TicketQueue:
        """The complaint queue over this engine and config."""
        from alerts.queue import TicketQueue

        return TicketQueue(self.engine, self.config, self.clock)


def get_state(request: Request) -> WebState:
    """The app's :class:`WebState`."""
    state: WebState = request.app.state.web
    return state


State = Annotated[WebState, Depends(get_state)]


async def run_db(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a blocking (database) call on a worker thread, never on the event loop."""
    return await anyio.to_thread.run_sync(partial(fn, *args, **kwargs))


def iso(value: datetime | None, tz: ZoneInfo) -> str | None:
    """ISO 8601 with the offset of the display timezone (None stays None)."""
    return value.astimezone(tz).isoformat() if value is not None else None


def iso_text(value: str | None, tz: ZoneInfo) -> str | None:
    """An ISO 8601 string (e.g. from ``Ticket.to_json``) moved to the display timezone."""
    return iso(datetime.fromisoformat(value), tz) if value else value


def client_address(request: Request) -> str:
    """The peer's address (a reverse proxy's own address when behind one: X-Forwarded-For is not trusted)."""
    return request.client.host if request.client else "-"


# -- authentication --------------------------------------------------------------------------------------------------
async def authenticate(request: Request) -> Principal:
    """The caller from ``Authorization: Bearer`` or the session cookie; ApiError 401 otherwise."""
    state = get_state(request)
    if state.locked:
        raise ApiError(401, "no_users", NO_USERS)
    header = request.headers.get("authorization", "")
    if header[:7].lower() == "bearer ":
        return await _bearer(state, request, header[7:].strip())
    cookie = request.cookies.get(SESSION_COOKIE)
    if cookie:
        session = state.sessions.get(cookie, state.clock.now())
        if session is not None and session.name in state.credentials.users:
            return Principal(session.name, session.role, "session", session.csrf)
    raise ApiError(401, "login_required", "请先登录 / please log in")


async def _bearer(state: WebState, request: Request, token: str) -> Principal:
    # Failed bearer checks share the login limiter (keyed apart from user names): each costs scrypt per token.
    key, now = ("\0bearer", client_address(request)), state.clock.now()
    wait = state.limiter.retry_after(key, now)
    if wait is not None:
        raise ApiError(429, "rate_limited", f"尝试过于频繁，请 {int(wait)} 秒后再试 / too many attempts; retry in "
                       f"{int(wait)} s", {"Retry-After": str(int(wait))})
    found = await run_db(state.credentials.check_token, token) if token else None
    if found is None:
        state.limiter.failed(key, now)
        event(log, "web.bad_token", logging.WARNING, client=key[1])
        raise ApiError(401, "bad_token", "API 令牌无效 / invalid API token")
    return Principal(found.name, found.role, "token")


def require(role: str) -> Callable[[Request], Awaitable[Principal]]:
    """A dependency: the caller, who must hold ``role`` or higher (and echo the CSRF token on unsafe methods)."""

    async def dependency(request: Request) -> Principal:
        principal = await authenticate(request)
        if principal.via == "session" and request.method in UNSAFE_METHODS:
            sent = request.headers.get(CSRF_HEADER, "")
            if not (principal.csrf and hmac.compare_digest(sent.encode(), principal.csrf.encode())):
                raise ApiError(403, "csrf", f"缺少或错误的 {CSRF_HEADER} 请求头 / missing or wrong {CSRF_HEADER} "
                                            "header (GET /api/me returns the token)")
        if not role_at_least(principal.role, role):
            raise ApiError(403, "forbidden", f"需要 {role} 或更高权限，当前为 {principal.role} / this needs the "
                                             f"{role} role; you are {principal.role}")
        return principal

    dependency.__name__ = f"require_{role}"
    return dependency


Viewer = Annotated[Principal, Depends(require("viewer"))]
Handler = Annotated[Principal, Depends(require("handler"))]
Admin = Annotated[Principal, Depends(require("admin"))]


# -- errors ----------------------------------------------------------------------------------------------------------
def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    """``{"error": message, "code": code}`` with ``status``."""
    return JSONResponse({"error": message, "code": code}, status_code=status, headers=headers)


def install_error_handlers(app: FastAPI) -> None:
    """Every error as ``{"error", "code"}``: ours, validation (422), unknown routes (404), unexpected (500)."""

    async def api_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def invalid(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = "; ".join(f"{'.'.join(str(p) for p in e.get('loc', ()) if p != 'body')}: {e.get('msg')}"
                             for e in exc.errors())
        return error_response(422, "invalid", f"请求参数有误 / invalid request: {problems}")

    async def http_error(_request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        message = {404: "没有这个地址 / no such route", 405: "不支持的请求方法 / method not allowed"}.get(
            exc.status_code, str(exc.detail))
        return error_response(exc.status_code, code, message, dict(exc.headers or {}))

    async def crashed(request: Request, exc: Exception) -> JSONResponse:
        event(log, "web.error", logging.ERROR, path=request.url.path, error=repr(exc))
        return error_response(500, "internal", "服务器内部错误，详情见日志 / internal error; see the server log")

    app.add_exception_handler(ApiError, api_error)
    app.add_exception_handler(RequestValidationError, invalid)
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(Exception, crashed)
