"""The complainant's progress page: the public link for handlers, and the page and its data for anyone holding it.

``GET /p/{token}`` serves the static page (monitor/web/static/progress.html; it loads progress.js, which asks
``GET /api/public/progress/{token}``). Neither needs a login: the 192-bit token is the credential. The data is what
:func:`alerts.progress.public_view` builds (stage, stage bar, registration date, promised times) and nothing else.
Both answer 404 unless ``queue.public_progress`` is on; the data is rate-limited per address.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from alerts.progress import ensure_token, progress_url, public_view
from monitor.web.api import ApiError, Handler, State, WebState, client_address, not_found, run_db
from monitor.web.auth import LoginLimiter

router = APIRouter(tags=["progress"])
#: Requests per address per window on the public data (a complainant reloading now and then is far below it).
PUBLIC_REQUESTS = 30
PUBLIC_WINDOW = 60.0
#: The page: the complainant's own link must not travel to other sites, or be indexed.
PAGE_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex, nofollow"}
_GONE = "没有这个进度页面 / no such progress page"


def _limiter(request: Request) -> LoginLimiter:
    """The app's per-address counter for the public data (made on first use; it counts every request)."""
    app_state = request.app.state
    limiter = getattr(app_state, "progress_limiter", None)
    if limiter is None:
        limiter = app_state.progress_limiter = LoginLimiter(PUBLIC_REQUESTS, PUBLIC_WINDOW)
    return limiter


def _enabled(state: WebState) -> None:
    if not state.config.queue.public_progress:
        raise ApiError(404, "not_found", _GONE)


@router.get("/api/tickets/{ref}/progress-link", summary="The ticket's public progress link (made on first ask)",
            responses={404: {"description": "no such ticket"},
                       409: {"description": "queue.public_progress is off"}})
async def progress_link(ref: str, state: State, _who: Handler) -> dict[str, Any]:
    """``{url}``: ``alerts.console_url`` + ``/p/<token>``, to send to the complainant."""
    if not state.config.queue.public_progress:
        raise ApiError(409, "disabled", "未启用投诉进度页（queue.public_progress）/ the progress page is off "
                                        "(queue.public_progress)")

    def work() -> str | None:
        found = state.queue().get(ref)
        if found is None:
            return None
        with state.engine.begin() as conn:
            return ensure_token(conn, found.id)
    token = await run_db(work)
    if token is None:
        raise not_found("ticket", ref)
    return {"url": progress_url(state.config, token)}


@router.get("/api/public/progress/{token}", summary="A complaint's progress, for the complainant (no login)")
async def public_progress(token: str, request: Request, state: State) -> dict[str, Any]:
    """Ticket number, current stage, stage bar, registration date, promised times and whether they were kept."""
    _enabled(state)
    limiter, key, now = _limiter(request), ("\0progress", client_address(request)), state.clock.now()
    wait = limiter.retry_after(key, now)
    if wait is not None:
        raise ApiError(429, "rate_limited", f"请求过于频繁，请 {int(wait)} 秒后再试 / too many requests; retry in "
                                            f"{int(wait)} s", {"Retry-After": str(int(wait))})
    limiter.failed(key, now)  # every request counts, found or not
    view = await run_db(public_view, state.engine, state.config, token, now)
    if view is None:
        raise ApiError(404, "not_found", _GONE)
    return view


@router.get("/p/{token}", include_in_schema=False)
async def progress_page(token: str, state: State) -> Response:
    """The static page; it reads the token from its own address. 404 when the feature is off."""
    from monitor.web.app import STATIC

    _enabled(state)
    del token  # the page asks the API itself; serving it the same for every token reveals nothing
    return FileResponse(STATIC / "progress.html", media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
