"""POST /api/login, POST /api/logout, GET /api/me."""

from __future__ import annotations

import logging

from fastapi import APIRouter, Request, Response

from monitor.logs import event
from monitor.web.api import (
    NO_USERS,
    SESSION_COOKIE,
    ApiError,
    State,
    Viewer,
    client_address,
    require,
    run_db,
)
from monitor.web.models import LoginIn, LoginOut, MeOut, OkOut, UserOut

log = logging.getLogger("monitor.web")
router = APIRouter(prefix="/api", tags=["auth"])
BAD_LOGIN = "用户名或密码错误 / wrong name or password"


@router.post("/login", summary="Log in with name and password; sets the session cookie", response_model=LoginOut,
             responses={401: {"description": "wrong name or password"}, 429: {"description": "too many failures"}})
async def login(body: LoginIn, request: Request, response: Response, state: State) -> LoginOut:
    """Check the password (scrypt) and open a session; the cookie is HttpOnly, SameSite=Strict."""
    if state.locked:
        raise ApiError(401, "no_users", NO_USERS)
    now, address = state.clock.now(), client_address(request)
    key = (body.name, address)
    wait = state.limiter.retry_after(key, now)
    if wait is not None:
        event(log, "web.login_locked", logging.WARNING, user=body.name, client=address)
        raise ApiError(429, "rate_limited", f"登录失败次数过多，请 {int(wait)} 秒后再试 / too many failed logins; "
                                            f"retry in {int(wait)} s", {"Retry-After": str(int(wait))})
    user = await run_db(state.credentials.check_password, body.name, body.password)
    if user is None:
        state.limiter.failed(key, now)
        event(log, "web.login_failed", logging.WARNING, user=body.name, client=address)
        raise ApiError(401, "bad_credentials", BAD_LOGIN)
    state.limiter.succeeded(key)
    old = request.cookies.get(SESSION_COOKIE)
    if old:
        state.sessions.drop(old)  # a new login never keeps a session id chosen before it (session fixation)
    token, session = state.sessions.create(user.name, user.role, now)
    response.set_cookie(SESSION_COOKIE, token, httponly=True, samesite="strict", secure=state.secure_cookies,
                        path="/")
    event(log, "web.login", user=user.name, role=user.role, client=address)
    return LoginOut(user=UserOut(name=user.name, role=user.role), csrf=session.csrf)


@router.post("/logout", summary="End the session and clear the cookie", response_model=OkOut)
async def logout(request: Request, response: Response, state: State) -> OkOut:
    """Without a live session this still clears the cookie; with one, the CSRF header is required."""
    token = request.cookies.get(SESSION_COOKIE)
    live = token is not None and not state.locked and state.sessions.get(token, state.clock.now()) is not None
    if live and token is not None:
        principal = await require("viewer")(request)  # checks the CSRF header
        state.sessions.drop(token)
        event(log, "web.logout", user=principal.name)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict", secure=state.secure_cookies)
    return OkOut()


@router.get("/me", summary="Who is logged in, the CSRF token and the default language", response_model=MeOut)
async def me(principal: Viewer, state: State) -> MeOut:
    """The caller; ``csrf`` is null for API tokens (they need none)."""
    return MeOut(name=principal.name, role=principal.role, csrf=principal.csrf, language=state.config.web.language)

