"""The FastAPI application: JSON API under /api, the single-page console's shell and static files, ops endpoints,
and the security headers every response carries."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from sqlalchemy.engine import Engine
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from monitor import __version__
from monitor.clock import Clock, SystemClock
from monitor.web import (
    api_auth,
    api_incidents,
    api_outcomes,
    api_overview,
    api_privacy,
    api_profiles,
    api_progress,
    api_scripts,
    api_sources,
    api_tickets,
    ops,
)
from monitor.web.api import Viewer, WebState, install_error_handlers

#: The browser side (index.html, app.js, app.css ...), written separately; served as files.
STATIC = Path(__file__).parent / "static"
#: The console's pages: each serves the same shell, which routes in the browser. The shell holds no data.
SHELL_ROUTES = ("/", "/login", "/incidents", "/incidents/{incident_id}", "/tickets", "/tickets/{ref}", "/sources",
                "/reports", "/scripts")
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
       "frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
#: Swagger UI's page loads its script and CSS from a CDN and starts with an inline script.
DOCS_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline' https://cdn.jsdelivr.net; "
            "style-src 'self' https://cdn.jsdelivr.net; img-src 'self' data: https://fastapi.tiangolo.com; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
PLACEHOLDER = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8"><title>monitor</title></head>
<body><h1>monitor</h1><p>控制台页面尚未安装（monitor/web/static/index.html）。JSON API 见 /api/docs。</p>
<p>The console's pages are not installed (monitor/web/static/index.html). The JSON API is at /api/docs.</p>
</body></html>
"""
DESCRIPTION = """The JSON API of the monitor console (舆情监测控制台).

Log in with `POST /api/login` (session cookie `monitor_session`; send the returned `csrf` as `X-CSRF-Token` on every
POST/DELETE) or send `Authorization: Bearer <token>` (a `web.tokens` entry). Roles: viewer reads; handler also acts
on incidents, tickets and silences and tests sources; admin may do everything. Errors are
`{"error": "中文 / English", "code": "..."}`. Times are ISO 8601 with the offset of the display timezone.
"""


class SecurityHeaders:
    """Adds CSP, nosniff, Referrer-Policy and X-Frame-Options to every response (a route's own CSP or frame
    option wins: reports and the API docs need looser ones), and ``Cache-Control: no-store`` to API answers."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Wrap ``send`` to add the headers to the response start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        no_store = path.startswith("/api/") or path in ("/metrics", "/readyz", "/healthz")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", CSP)
                headers.setdefault("X-Frame-Options", "DENY")
                headers["X-Content-Type-Options"] = "nosniff"
                headers["Referrer-Policy"] = "same-origin"
                if no_store:
                    headers["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_with_headers)


def create_app(config: Any, engine: Engine, *, clock: Clock | None = None, runtime: Any = None) -> FastAPI:
    """The console for ``config`` over ``engine``; ``runtime`` (the daemon) adds scheduler state to /readyz."""
    app = FastAPI(title="monitor console API", version=__version__, description=DESCRIPTION, openapi_url=None,
                  docs_url=None, redoc_url=None)
    app.state.web = WebState(config, engine, clock or SystemClock(), runtime)
    install_error_handlers(app)
    for module in (api_auth, api_overview, api_incidents, api_tickets, api_sources, ops):
        app.include_router(module.router)
    app.include_router(api_scripts.router)  # reply-script library
    app.include_router(api_outcomes.router)  # follow-up, compensation, outcome
    app.include_router(api_progress.router)  # the complainant's progress page (public, token-gated)
    app.include_router(api_privacy.router)  # personal data: audit log, export and erasure (admin)
    app.include_router(api_profiles.router)  # complainant / author profiles across platforms

    # The schema and its viewer need a login like the rest of /api (they are generated, never static).
    @app.get("/api/openapi.json", include_in_schema=False)
    async def openapi(_who: Viewer) -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/api/docs", include_in_schema=False)
    async def docs(_who: Viewer) -> HTMLResponse:
        page = get_swagger_ui_html(openapi_url="/api/openapi.json", title="monitor API")
        page.headers["Content-Security-Policy"] = DOCS_CSP
        return page

    async def shell() -> Response:
        index = STATIC / "index.html"
        headers = {"Cache-Control": "no-cache"}  # a new version of the console is picked up at the next load
        if index.is_file():
            return FileResponse(index, media_type="text/html; charset=utf-8", headers=headers)
        return HTMLResponse(PLACEHOLDER, headers=headers)

    for route in SHELL_ROUTES:
        app.add_api_route(route, shell, methods=["GET"], include_in_schema=False)
    app.mount("/static", StaticFiles(directory=STATIC, check_dir=False), name="static")
    app.add_middleware(SecurityHeaders)
    return app
