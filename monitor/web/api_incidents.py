"""Incidents: list, detail, and what people do with them (acknowledge, resolve, verdict, silence, open a ticket).

Every action reuses :mod:`alerts.actions` (one transaction, an ``incident_events`` row naming the actor) and answers
with the incident's detail as GET /api/incidents/{id} shows it, so the browser redraws from one response.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request
from sqlalchemy import select
from sqlalchemy.engine import Engine

from alerts import actions
from monitor.analysis.surge import Reason, render_reason
from monitor.db.schema import incident_events, incidents
from monitor.db.store import posts_by_uid
from monitor.errors import MonitorError
from monitor.web.api import ApiError, Handler, State, Viewer, WebState, iso, not_found, run_db
from monitor.web.auth import Principal
from monitor.web.models import FeedbackIn, IncidentDetail, IncidentList, NoteIn, ResolveIn, SilenceFor
from monitor.web.privacy_view import audit_ticket_view, mask_incident, masked_for

router = APIRouter(prefix="/api", tags=["incidents"])
#: Member posts shown with an incident (the newest).
DETAIL_POSTS = 200
StatusFilter = Literal["active", "open", "quiet", "resolved", "all"]


def summary(r: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """An IncidentSummary from an ``incidents`` row."""
    return {
        "id": r["id"], "opened_at": iso(r["opened_at"], tz), "updated_at": iso(r["updated_at"], tz),
        "status": r["status"], "severity": r["severity"], "title": r["title"] or "", "posts": r["posts"],
        "authors": r["authors"], "sources": list(r["sources"] or []), "keywords": list(r["keywords"] or []),
        "watches": list(r["watches"] or []), "category": r["category"], "acked_by": r["acked_by"],
        "feedback": r["feedback"], "ticket_id": r["ticket_id"],
    }


def query_incidents(engine: Engine, status: str, limit: int) -> list[Any]:
    """Incident rows, newest first (``active`` = open or quiet)."""
    query = select(incidents).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()).limit(limit)
    if status == "active":
        query = query.where(incidents.c.status.in_(("open", "quiet")))
    elif status != "all":
        query = query.where(incidents.c.status == status)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def _reasons(stored: Sequence[Any] | None, lang: str) -> list[str]:
    out = []
    for code, values in stored or []:
        try:
            out.append(render_reason(Reason(code, tuple((k, v) for k, v in values)), lang))
        except (KeyError, ValueError, TypeError):  # a reason written by an older version: show its code
            out.append(str(code))
    return out


def _member_posts(engine: Engine, uids: Sequence[str], tz: ZoneInfo) -> list[dict[str, Any]]:
    """The stored posts of ``uids`` (``source:native_id``), newest published first; text returned verbatim."""
    with engine.connect() as conn:
        found = posts_by_uid(conn, uids)
    found.sort(key=lambda r: (r.published_at, r.id), reverse=True)
    return [{"uid": f"{r.source_name}:{r.native_id}", "source": r.source_name, "author": r.author, "title": r.title,
             "text": r.text, "url": r.url, "published_at": iso(r.published_at, tz), "negative": r.negative,
             "sentiment": r.sentiment, "reposts": r.reposts, "comments": r.comments} for r in found]


def detail(state: WebState, incident_id: int) -> dict[str, Any]:
    """Everything about one incident, as GET /api/incidents/{id} answers (blocking)."""
    from monitor.web.api_tickets import ticket_json

    tz = state.tz
    try:
        data = actions.incident_detail(state.engine, incident_id)
    except actions.NotFoundError:
        raise not_found("incident", incident_id) from None
    inc = data["incident"]
    full = summary(inc, tz) | {"reasons": _reasons(inc["reasons"], "zh"), "reasons_en": _reasons(inc["reasons"], "en"),
                               "representative": inc["representative"], "score": inc["score"]}
    members = sorted(data["posts"], key=lambda m: (m["added_at"], m["post_uid"]), reverse=True)[:DETAIL_POSTS]
    ticket = state.queue().get(inc["ticket_id"]) if inc["ticket_id"] is not None else None
    return {
        "incident": full,
        "timeline": [{"at": iso(p["at"], tz), "key": p["key"], "severity": p["severity"], "score": p["score"],
                      "negatives": p["negatives"], "posts": p["posts"], "authors": p["authors"],
                      "expected": p["expected"]} for p in data["timeline"]],
        "posts": _member_posts(state.engine, [m["post_uid"] for m in members], tz),
        "events": [{"at": iso(e["at"], tz), "actor": e["actor"], "action": e["action"], "note": e["note"]}
                   for e in data["events"]],
        "notifications": [{"channel": n["channel"], "status": n["status"], "attempts": n["attempts"],
                           "sent_at": iso(n["sent_at"], tz), "kind": n["kind"], "title": n.get("title", "")}
                          for n in data["notifications"]],
        "ticket": ticket_json(ticket, tz) if ticket is not None else None,
    }


def silence_until(body: SilenceFor, now: datetime) -> datetime:
    """The end of a silence from ``duration`` or ``until``; ApiError 422 when neither or unreadable."""
    from monitor.durations import parse_duration

    try:
        if body.duration:
            return now + timedelta(seconds=parse_duration(body.duration))
        if body.until:
            until = datetime.fromisoformat(body.until)
            if until.tzinfo is None:
                raise ValueError(f"{body.until!r} has no UTC offset; write it like 2026-11-23T18:00:00+08:00")
            return until
    except ValueError as exc:
        raise ApiError(422, "invalid", f"静默时长或结束时间有误 / bad duration or until: {exc}") from None
    raise ApiError(422, "invalid", "请给出 duration（如 2h）或 until / give duration (e.g. 2h) or until")


def shown(state: WebState, who: Principal, data: dict[str, Any]) -> dict[str, Any]:
    """An incident detail as ``who`` may see it: posts, notes and the ticket masked for ``privacy.mask_roles``."""
    return mask_incident(data) if masked_for(state, who) else data


async def _act(state: WebState, incident_id: int, fn: Any, *args: Any, **kwargs: Any) -> dict[str, Any]:
    """Run an action then read the detail back, both off the loop; unknown ids are 404, refusals 422. (Actions
    are for handlers: masked only when ``privacy.mask_roles`` names them, which the endpoints check.)"""
    def work() -> dict[str, Any]:
        try:
            fn(state.engine, incident_id, *args, **kwargs)
        except actions.NotFoundError:
            raise not_found("incident", incident_id) from None
        except MonitorError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        return detail(state, incident_id)
    return await run_db(work)


@router.get("/incidents", summary="List incidents, newest first", response_model=IncidentList)
async def list_incidents(state: State, _who: Viewer, status: StatusFilter = "active",
                         limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    """``status``: active (open or quiet, the default), open, quiet, resolved or all."""
    rows = await run_db(query_incidents, state.engine, status, limit)
    return {"items": [summary(r, state.tz) for r in rows]}


@router.get("/incidents/{incident_id}", summary="One incident: reasons, timeline, posts, history, ticket",
            response_model=IncidentDetail, responses={404: {"description": "no such incident"}})
async def get_incident(incident_id: int, request: Request, state: State, who: Viewer) -> dict[str, Any]:
    """The incident with its newest 200 member posts (text verbatim: escape it when displaying). Phone, ID and
    order numbers are masked for the roles in ``privacy.mask_roles``; an unmasked view of the incident's ticket is
    recorded in the audit log."""
    data = await run_db(detail, state, incident_id)
    if data["ticket"] is not None:
        await run_db(audit_ticket_view, state, who, request, [int(data["ticket"]["id"])], "incident")
    return shown(state, who, data)


@router.post("/incidents/{incident_id}/ack", summary="Acknowledge: someone is on it (repeat reminders stop)",
             response_model=IncidentDetail, responses={404: {"description": "no such incident"}})
async def ack(incident_id: int, state: State, who: Handler, body: NoteIn | None = None) -> dict[str, Any]:
    """Acknowledge the incident, with an optional note (the body may be omitted)."""
    note = body.note if body else ""
    return shown(state, who, await _act(state, incident_id, actions.acknowledge, who.actor, state.clock.now(), note))


@router.post("/incidents/{incident_id}/resolve", summary="Resolve (optionally with a verdict: real or noise)",
             response_model=IncidentDetail, responses={404: {"description": "no such incident"}})
async def resolve(incident_id: int, state: State, who: Handler, body: ResolveIn | None = None) -> dict[str, Any]:
    """Close the incident; messages about it still waiting are dropped (the body may be omitted)."""
    now, given = state.clock.now(), body or ResolveIn()

    def both(engine: Engine, iid: int) -> None:
        actions.resolve(engine, iid, who.actor, now, given.note)
        if given.verdict:
            actions.feedback(engine, iid, given.verdict, who.actor, now)
    return shown(state, who, await _act(state, incident_id, both))


@router.post("/incidents/{incident_id}/feedback", summary="Record the team's verdict: real or noise",
             response_model=IncidentDetail, responses={404: {"description": "no such incident"}})
async def feedback(incident_id: int, body: FeedbackIn, state: State, who: Handler) -> dict[str, Any]:
    """Kept for tuning the detector."""
    return shown(state, who, await _act(state, incident_id, lambda engine, iid: actions.feedback(
        engine, iid, body.verdict, who.actor, state.clock.now(), body.note)))


@router.post("/incidents/{incident_id}/silence", summary="Silence this incident's notifications for a while",
             response_model=IncidentDetail, responses={404: {"description": "no such incident"}})
async def silence(incident_id: int, body: SilenceFor, state: State, who: Handler) -> dict[str, Any]:
    """``duration`` ("2h") or ``until`` (ISO 8601 with offset)."""
    now = state.clock.now()
    until = silence_until(body, now)
    return shown(state, who, await _act(state, incident_id, lambda engine, iid: actions.add_silence(
        engine, until=until, now=now, actor=who.actor, incident_id=iid, comment=body.comment)))


@router.post("/incidents/{incident_id}/ticket", summary="Open the incident's ticket if it has none",
             response_model=IncidentDetail,
             responses={404: {"description": "no such incident"}, 409: {"description": "the queue is disabled"}})
async def open_ticket(incident_id: int, state: State, who: Handler) -> dict[str, Any]:
    """A person asking for a ticket gets one whatever ``queue.min_severity`` says (the queue must be enabled)."""
    if not state.config.queue.enabled:
        raise ApiError(409, "queue_disabled", "工单队列未启用（queue.enabled: false）/ the complaint queue is "
                                              "disabled (queue.enabled: false)")
    now = state.clock.now()

    def work(engine: Engine, iid: int) -> None:
        from alerts.queue import TicketQueue

        config = state.config
        config = config.model_copy(update={"queue": config.queue.model_copy(update={"min_severity": "blue"})})
        queue = TicketQueue(engine, config, state.clock)
        with engine.begin() as conn:
            row = conn.execute(select(incidents).where(incidents.c.id == iid)).first()
            if row is None:
                raise actions.NotFoundError(str(iid))
            if row.ticket_id is not None:
                return
            ticket_id = queue.open_for_incident(conn, row, now)
            conn.execute(incident_events.insert().values(incident_id=iid, at=now, actor=who.actor[:64],
                                                         action="ticket_opened", note=f"ticket {ticket_id}"))
    return shown(state, who, await _act(state, incident_id, work))
