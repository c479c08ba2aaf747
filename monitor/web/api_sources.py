"""Sources (health, posts per day, a test fetch that stores nothing) and the printable reports."""

from __future__ import annotations

import asyncio
import logging
from datetime import date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter
from fastapi.responses import Response
from sqlalchemy import func, select

from monitor.db.schema import posts, sources
from monitor.logs import event
from monitor.privacy import mask_text
from monitor.web.api import ApiError, Handler, State, Viewer, WebState, iso, not_found, run_db
from monitor.web.models import SourceList, SourceTestOut
from monitor.web.privacy_view import masked_for

log = logging.getLogger("monitor.web")
router = APIRouter(prefix="/api", tags=["sources", "reports"])
#: Days of the posts-per-day figures.
DAYS = 7
#: A source test gives up after this long (a slow site must not hold a browser request forever).
TEST_TIMEOUT = 60.0
#: Posts shown from a source test.
TEST_POSTS = 10
#: Reports are shown in the console (an iframe of the same origin) and printed: inline styles, no scripts at all.
REPORT_CSP = ("default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'self'; "
              "base-uri 'none'; form-action 'none'")


def source_rows(state: WebState) -> list[dict[str, Any]]:
    """Every configured source with its health and the posts it collected on each of the last 7 days (blocking)."""
    tz, now, config = state.tz, state.clock.now(), state.config
    health = {h.name: h for h in state.store().health(include_removed=True)}
    today = now.astimezone(tz).date()
    days = [today - timedelta(days=DAYS - 1 - i) for i in range(DAYS)]
    per_day: dict[str, list[int]] = {}
    with state.engine.connect() as conn:
        # One grouped count per day (index on fetched_at): the day boundaries are local, so SQL cannot group them.
        for i, day in enumerate(days):
            start = datetime.combine(day, datetime.min.time(), tz)
            rows = conn.execute(select(sources.c.name, func.count()).join(posts, posts.c.source_id == sources.c.id)
                                .where(posts.c.fetched_at >= start, posts.c.fetched_at < start + timedelta(days=1))
                                .group_by(sources.c.name))
            for name, n in rows:
                per_day.setdefault(name, [0] * DAYS)[i] = int(n)
    out = []
    for spec in config.sources:
        h = health.get(spec.name)
        out.append({
            "name": spec.name, "type": spec.type, "enabled": spec.enabled,
            "status": "disabled" if not spec.enabled else (h.status if h else "new"),
            "last_run_at": iso(h.last_run_at, tz) if h else None,
            "last_success_at": iso(h.last_success_at, tz) if h else None,
            "last_failure_at": iso(h.last_failure_at, tz) if h else None,
            "consecutive_failures": h.consecutive_failures if h else 0, "last_error": h.last_error if h else None,
            "posts_total": h.posts_total if h else 0, "interval": spec.interval,
            "next_attempt_at": iso(h.next_attempt_at, tz) if h else None,
            "posts_per_day": [{"date": d.isoformat(), "posts": per_day.get(spec.name, [0] * DAYS)[i]}
                              for i, d in enumerate(days)],
        })
    return out


async def test_source(state: WebState, name: str, timeout: float = TEST_TIMEOUT) -> dict[str, Any]:
    """Fetch and parse source ``name`` once, as ``monitor try-source`` does; nothing is stored."""
    from monitor.http import HttpClient
    from monitor.registry import get_kind
    from monitor.runner import parse_pages

    config = state.config
    spec = next((s for s in config.sources if s.name == name), None)
    if spec is None:
        raise not_found("source", name)
    source = get_kind(spec.type)(spec)
    found: list[Any] = []
    problems: list[str] = []
    error: str | None = None
    try:
        async with HttpClient(config.http) as http:
            fetched = await asyncio.wait_for(source.fetch(http, {}), timeout)
        problems = list(fetched.problems)
        found, more = await run_db(parse_pages, source, fetched.pages, ZoneInfo(spec.timezone or config.timezone))
        problems += more
    except TimeoutError:
        error = f"超时（{int(timeout)} 秒）/ timed out after {int(timeout)} s"
    except Exception as exc:  # FetchError, ParseError, a bug in a source kind: the message is the answer
        error = str(exc) or repr(exc)
    event(log, "web.source_test", source=name, posts=len(found), error=error or "")
    return {"ok": error is None, "error": error, "problems": problems,
            "posts": [{"title": p.title, "text": p.text, "author": p.author, "url": p.url,
                       "published_at": iso(p.published_at, state.tz)} for p in found[:TEST_POSTS]],
            "total": len(found)}


@router.get("/sources", summary="Every configured source with its health and posts per day",
            response_model=SourceList)
async def list_sources(state: State, _who: Viewer) -> dict[str, Any]:
    """``posts_per_day``: posts collected (fetched) on each of the last 7 days, display timezone."""
    return {"items": await run_db(source_rows, state)}


@router.post("/sources/{name}/test", summary="Fetch and parse one source once, storing nothing",
             response_model=SourceTestOut, responses={404: {"description": "no such source"}})
async def test(name: str, state: State, _who: Handler) -> dict[str, Any]:
    """The first 10 posts read, the parser's problems, or the error (``ok`` false); gives up after 60 s."""
    return await test_source(state, name)


def period(kind: str, day: str | None, tz: ZoneInfo, now: datetime) -> tuple[datetime, datetime]:
    """[start, end) of the report: the day or Monday-to-Sunday week holding ``day``; default the last finished one."""
    from alerts.report import day_window, week_window

    if day:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            raise ApiError(422, "invalid", f"日期格式应为 YYYY-MM-DD / date {day!r} is not YYYY-MM-DD") from None
    else:
        chosen = now.astimezone(tz).date() - timedelta(days=7 if kind == "weekly" else 1)
    return week_window(chosen, tz) if kind == "weekly" else day_window(chosen, tz)


@router.get("/reports/{kind}", summary="The daily or weekly report, as printable HTML or Markdown",
            response_class=Response,
            responses={200: {"content": {"text/html": {}, "text/markdown": {}},
                             "description": "the report (everything from posts is escaped in HTML)"}})
async def report(kind: Literal["daily", "weekly"], state: State, who: Viewer, date: str | None = None,
                 format: Literal["html", "markdown"] = "html") -> Response:
    """``date`` (YYYY-MM-DD, display timezone): the day, or a day of the week; default yesterday / last week.
    Personal fields in the rendered report (incident and ticket titles come from posts) are masked for the roles
    in ``privacy.mask_roles``."""
    from alerts.report import build_report

    now = state.clock.now()
    start, end = period(kind, date, state.tz, now)
    body = await run_db(build_report, state.engine, state.config, start=start, end=end, fmt=format,
                        now=min(now, end))
    if masked_for(state, who):
        body = mask_text(body)
    if format == "html":
        return Response(body, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": REPORT_CSP, "X-Frame-Options": "SAMEORIGIN"})
    return Response(body, media_type="text/markdown; charset=utf-8")
