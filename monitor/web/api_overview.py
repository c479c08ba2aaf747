"""The dashboard (GET /api/dashboard) and silences (GET/POST /api/silences, DELETE /api/silences/{id})."""

from __future__ import annotations

import time
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter
from sqlalchemy import func, select

from alerts import actions
from alerts import tickets as tk
from monitor.analysis.pipeline import ALL_POSTS
from monitor.analysis.surge import SEVERITIES
from monitor.db.schema import incidents, notifications, posts
from monitor.errors import MonitorError
from monitor.web.api import ApiError, Handler, State, Viewer, WebState, iso, not_found, run_db
from monitor.web.api_incidents import query_incidents, silence_until, summary
from monitor.web.models import Dashboard, OkOut, SilenceIn, SilenceList, SilenceOut

router = APIRouter(prefix="/api", tags=["overview"])
#: (bucket length, number of buckets) per dashboard range.
RANGES = {"24h": (timedelta(hours=1), 24), "7d": (timedelta(hours=6), 28)}
#: Active incidents listed on the dashboard.
DASHBOARD_INCIDENTS = 50


def buckets(now: datetime, step: timedelta, count: int, tz: Any) -> list[datetime]:
    """``count`` bucket starts ending with the one holding ``now``, aligned to whole hours of the display timezone
    (6-hour buckets start at 00, 06, 12, 18 local time)."""
    local = now.astimezone(tz).replace(minute=0, second=0, microsecond=0)
    hours = int(step.total_seconds() // 3600)
    last = local - timedelta(hours=local.hour % hours)
    return [last - step * (count - 1 - i) for i in range(count)]


#: Seconds the counts of finished dashboard buckets are reused.
CACHE_SECONDS = 120.0


def _count(conn: Any, names: list[str], start: datetime, end: datetime, step: timedelta,
           slots: int) -> dict[str, list[list[int]]]:
    """Posts and negative posts per watch in ``slots`` buckets of ``step`` from ``start`` (up to ``end``)."""
    counts = {n: [[0, 0] for _ in range(slots)] for n in names}
    rows = conn.execute(select(posts.c.published_at, posts.c.watches, posts.c.sentiment).where(
        posts.c.published_at >= start, posts.c.published_at < end))
    for r in rows:
        slot = int((r.published_at - start) / step)
        if not 0 <= slot < slots:
            continue
        keys = [ALL_POSTS] if names == [ALL_POSTS] else [w for w in (r.watches or []) if w in counts]
        for key in keys:
            counts[key][slot][0] += 1
            counts[key][slot][1] += r.sentiment == "negative"
    return counts


def build_dashboard(state: WebState, rng: str) -> dict[str, Any]:
    """The dashboard's figures (blocking)."""
    tz, now, config = state.tz, state.clock.now(), state.config
    step, count = RANGES[rng]
    starts = buckets(now, step, count, tz)
    names = [w.name for w in config.watches] or [ALL_POSTS]
    with state.engine.connect() as conn:
        # Finished buckets barely change (only late posts land in them): they are counted once per CACHE_SECONDS;
        # the current bucket is counted on every request, so a surge in progress shows at once.
        # Kept on the app's state (one per app and database), never shared between apps.
        cache: dict[tuple[Any, ...], tuple[float, dict[str, list[list[int]]]]] = state.__dict__.setdefault(
            "_dashboard_cache", {})
        key = (rng, starts[0], tuple(names))
        cached = cache.get(key)
        if cached is None or cached[0] < time.monotonic():
            done = _count(conn, names, starts[0], starts[-1], step, len(starts) - 1)
            cache.pop(key, None)
            for old in [k for k in cache if k[0] == rng]:  # old bucket starts are never asked for again
                del cache[old]
            cache[key] = (time.monotonic() + CACHE_SECONDS, done)
        else:
            done = cached[1]
        current = _count(conn, names, starts[-1], starts[-1] + step, step, 1)
        counts = {n: [list(c) for c in done[n]] + current[n] for n in names}
        by_severity: dict[str, int] = dict(conn.execute(select(incidents.c.severity, func.count()).where(
            incidents.c.status.in_(("open", "quiet"))).group_by(incidents.c.severity)).all())
        outbox: dict[str, int] = dict(conn.execute(select(notifications.c.status, func.count()).where(
            notifications.c.status.in_(("pending", "sending", "failed"))).group_by(notifications.c.status)).all())
    health = {h.name: h for h in state.store().health(include_removed=True)}
    open_tickets = state.queue().list_tickets(states=tk.OPEN_STATES, limit=1_000_000, now=now)
    return {
        "range": rng,
        "incidents_by_severity": {s: int(by_severity.get(s, 0)) for s in SEVERITIES},
        "open_incidents": [summary(r, tz) for r in query_incidents(state.engine, "active", DASHBOARD_INCIDENTS)],
        "watches": [{"name": n, "series": [{"t": iso(t, tz), "posts": c[0], "negatives": c[1]}
                                           for t, c in zip(starts, counts[n], strict=True)]} for n in names],
        "sources": [{"name": s.name, "type": s.type,
                     "status": "disabled" if not s.enabled else (health[s.name].status if s.name in health else "new"),
                     "last_success_at": iso(health[s.name].last_success_at, tz) if s.name in health else None,
                     "last_error": health[s.name].last_error if s.name in health else None} for s in config.sources],
        # "pending" counts rows being sent too: both are still to be delivered.
        "outbox": {"pending": int(outbox.get("pending", 0)) + int(outbox.get("sending", 0)),
                   "failed": int(outbox.get("failed", 0))},
        "tickets": {"open": len(open_tickets), "overdue": sum(1 for t in open_tickets if t.overdue)},
    }


@router.get("/dashboard", summary="Overview: incidents by severity, volumes per watch, sources, outbox, tickets",
            response_model=Dashboard)
async def dashboard(state: State, _who: Viewer, range: Literal["24h", "7d"] = "24h") -> dict[str, Any]:
    """Hourly buckets for 24h, 6-hour buckets for 7d, in the display timezone."""
    return await run_db(build_dashboard, state, range)


def _silence(r: dict[str, Any], state: WebState, now: datetime) -> dict[str, Any]:
    tz = state.tz
    return {"id": r["id"], "watch": r["watch"], "source": r["source"], "keyword": r["keyword"],
            "incident_id": r["incident_id"], "starts_at": iso(r["starts_at"], tz), "ends_at": iso(r["ends_at"], tz),
            "comment": r["comment"], "created_by": r["created_by"], "created_at": iso(r["created_at"], tz),
            "active": r["starts_at"] <= now < r["ends_at"]}


@router.get("/silences", summary="Silences in force (all=1: expired ones too), newest first",
            response_model=SilenceList)
async def list_silences(state: State, _who: Viewer, all: bool = False) -> dict[str, Any]:
    """Run-time silences (those in the config file are not listed)."""
    now = state.clock.now()
    rows = await run_db(actions.list_silences, state.engine, now, include_expired=all)
    return {"items": [_silence(r, state, now) for r in rows]}


@router.post("/silences", summary="Silence matching incidents for a duration or until a time",
             response_model=SilenceOut, responses={422: {"description": "no matcher, or a bad duration"}})
async def add_silence(body: SilenceIn, state: State, who: Handler) -> dict[str, Any]:
    """At least one of watch, source, keyword; and duration ("2h") or until (ISO 8601 with offset)."""
    now = state.clock.now()
    until = silence_until(body, now)

    def work() -> dict[str, Any]:
        try:
            sid = actions.add_silence(state.engine, until=until, now=now, actor=who.actor, watch=body.watch or None,
                                      source=body.source or None, keyword=body.keyword or None, comment=body.comment)
        except MonitorError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        found = [r for r in actions.list_silences(state.engine, now) if r["id"] == sid]
        return _silence(found[0], state, now)
    return await run_db(work)


@router.delete("/silences/{silence_id}", summary="End a silence now", response_model=OkOut,
               responses={404: {"description": "no such silence in force"}})
async def expire_silence(silence_id: int, state: State, _who: Handler) -> dict[str, Any]:
    """The silence ends at once; later notifications go out again."""
    def work() -> None:
        try:
            actions.expire_silence(state.engine, silence_id, state.clock.now())
        except actions.NotFoundError:
            raise not_found("silence", silence_id) from None
    await run_db(work)
    return {"ok": True}
