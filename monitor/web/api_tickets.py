"""The complaint queue: list and read tickets, move them through their lifecycle, assign, note, respond.

Every action goes through :class:`alerts.queue.TicketQueue` (one transaction, a ``ticket_events`` row naming the
actor, outbox rows where something must be sent). A move the lifecycle refuses is 409 with the queue's own
bilingual message.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request

from alerts import tickets as tk
from alerts.outcomes import incomplete, outcome_columns
from monitor.analysis.surge import SEVERITIES
from monitor.web.api import ApiError, Handler, State, Viewer, WebState, iso, iso_text, not_found, run_db
from monitor.web.auth import Principal
from monitor.web.models import AssignIn, MoveIn, TextIn, TicketList
from monitor.web.privacy_view import audit_ticket_view, mask_ticket, masked_for

if TYPE_CHECKING:
    from alerts.queue import Ticket

router = APIRouter(prefix="/api", tags=["tickets"])
_TIMES = ("occurred_at", "created_at", "updated_at", "acknowledged_at", "responded_at", "verified_at", "resolved_at",
          "closed_at")


def ticket_json(ticket: Ticket, tz: ZoneInfo, *, events: bool = True) -> dict[str, Any]:
    """``Ticket.to_json`` with times in the display timezone, ``overdue`` per SLA milestone and for the ticket."""
    out = ticket.to_json()
    for name in _TIMES:
        out[name] = iso_text(out[name], tz)
    overdue = {m.milestone for m in ticket.overdue}
    for name, m in out["sla"].items():
        m["deadline"], m["met_at"] = iso_text(m["deadline"], tz), iso_text(m["met_at"], tz)
        m["overdue"] = name in overdue
    out["overdue"] = bool(overdue)
    out["overdue_seconds"] = int(ticket.overdue_by.total_seconds())
    out["allowed_states"] = list(tk.allowed_targets(ticket.state))
    if events:
        for e in out["events"]:
            e["at"] = iso_text(e["at"], tz)
    else:
        out.pop("events", None)
    return out


def add_outcomes(state: WebState, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Add the follow-up / compensation / outcome fields (``nps``, ``followup_at``, ``compensation``,
    ``withdrawn``, ``outcome_note``) and ``incomplete`` (closed without 回访) to ticket JSON; blocking: call it
    through :func:`run_db`. (Kept apart from ``Ticket`` so the queue's own JSON, sent outside, stays as it is.)"""
    found = outcome_columns(state.engine, [int(i["id"]) for i in items])
    for item in items:
        got = found.get(int(item["id"]), {})
        item.update(nps=got.get("nps"), followup_at=iso(got.get("followup_at"), state.tz),
                    compensation=got.get("compensation") or [], withdrawn=got.get("withdrawn"),
                    outcome_note=got.get("outcome_note"))
        item["incomplete"] = incomplete(item)
    return items


def _states(text: str | None) -> list[str] | None:
    """``state`` query value: empty = every state but closed, ``all``, or codes/labels separated by commas."""
    if not text:
        return None
    if text == "all":
        return list(tk.STATES)
    try:
        return [s if s in tk.STATES else tk.parse_state(s) for s in text.split(",") if s.strip()]
    except tk.TicketError as exc:
        raise ApiError(422, "invalid", str(exc)) from None


@router.get("/tickets", summary="List tickets: overdue first, then by severity and lapse", response_model=TicketList)
async def list_tickets(request: Request, state: State, who: Viewer, state_: str | None = Query(None, alias="state"),
                       severity: str | None = None, assignee: str | None = None, overdue: bool = False,
                       limit: int = Query(200, ge=1, le=5000)) -> dict[str, Any]:
    """``state``: empty (every state but closed), ``all``, or states separated by commas; ``assignee=-``:
    unassigned; ``overdue=1``: only tickets with an SLA milestone overdue."""
    if severity and severity not in SEVERITIES:
        raise ApiError(422, "invalid", f"未知的级别 {severity!r} / unknown severity; use {', '.join(SEVERITIES)}")
    states = _states(state_)
    found = await run_db(state.queue().list_tickets, states=states, severity=severity, assignee=assignee,
                         overdue_only=overdue, limit=limit, now=state.clock.now())
    await run_db(audit_ticket_view, state, who, request, [t.id for t in found], "list")
    items = await run_db(add_outcomes, state, [ticket_json(t, state.tz, events=False) for t in found])
    return {"items": [_shown(state, who, i) for i in items]}


@router.get("/tickets/{ref}", summary="One ticket (by id or number) with its history and SLA milestones",
            responses={200: {"description": "the ticket (Ticket JSON: columns, sla{milestone: {deadline, met_at, "
                                            "overdue, overdue_seconds, waived}}, events[], allowed_states[])"},
                       404: {"description": "no such ticket"}})
async def get_ticket(ref: str, request: Request, state: State, who: Viewer) -> dict[str, Any]:
    """``ref`` is the id (12) or the number (T20261123-0001). Personal fields are masked for the roles in
    ``privacy.mask_roles``; an unmasked view is recorded in the audit log."""
    found = await run_db(state.queue().get, ref)
    if found is None:
        raise not_found("ticket", ref)
    await run_db(audit_ticket_view, state, who, request, [found.id])
    return _shown(state, who, (await run_db(add_outcomes, state, [ticket_json(found, state.tz)]))[0])


def _shown(state: WebState, who: Principal | None, data: dict[str, Any]) -> dict[str, Any]:
    """``data`` (a ticket's JSON) as ``who`` may see it: masked for ``privacy.mask_roles``."""
    return mask_ticket(data) if who is not None and masked_for(state, who) else data


async def _act(state: WebState, ref: str, action: Callable[[Any], Ticket],
               who: Principal | None = None) -> dict[str, Any]:
    """Run a queue action off the loop; 404 for an unknown ticket, 409 for a refused one."""
    def work() -> Ticket:
        queue = state.queue()
        if queue.get(ref) is None:
            raise not_found("ticket", ref)
        try:
            return action(queue)
        except tk.TicketError as exc:
            raise ApiError(409, "refused", str(exc)) from None
    return _shown(state, who, (await run_db(add_outcomes, state, [ticket_json(await run_db(work), state.tz)]))[0])


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the ticket after the action (as GET /api/tickets/{ref})"},
    404: {"description": "no such ticket"}, 409: {"description": "refused by the lifecycle (message says why)"}}


@router.post("/tickets/{ref}/move", summary="Move the ticket to another state", responses=_RESPONSES)
async def move(ref: str, body: MoveIn, state: State, who: Handler) -> dict[str, Any]:
    """``state`` is a code (accepted, verifying, handling, follow_up, closed) or its Chinese label; closing from
    follow_up needs ``satisfaction`` 1-5; some moves need a ``note``."""
    return await _act(state, ref, lambda q: q.move(ref, body.state, actor=who.actor, note=body.note,
                                                   satisfaction=body.satisfaction, now=state.clock.now()), who)


@router.post("/tickets/{ref}/assign", summary="Give the ticket to someone", responses=_RESPONSES)
async def assign(ref: str, body: AssignIn, state: State, who: Handler) -> dict[str, Any]:
    """Assigning counts as acknowledging the ticket."""
    return await _act(state, ref, lambda q: q.assign(ref, body.assignee, actor=who.actor, now=state.clock.now()), who)


@router.post("/tickets/{ref}/note", summary="Add a note to the ticket's history", responses=_RESPONSES)
async def note(ref: str, body: TextIn, state: State, who: Handler) -> dict[str, Any]:
    """A note does not count as acknowledging."""
    return await _act(state, ref, lambda q: q.note(ref, body.text, actor=who.actor, now=state.clock.now()), who)


@router.post("/tickets/{ref}/respond", summary="Record a reply to the complainant", responses=_RESPONSES)
async def respond(ref: str, body: TextIn, state: State, who: Handler) -> dict[str, Any]:
    """The first reply meets the respond milestone."""
    return await _act(state, ref, lambda q: q.respond(ref, body.text, actor=who.actor, now=state.clock.now()), who)
