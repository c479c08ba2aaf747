"""Personal data in API answers: masked for the roles in ``privacy.mask_roles`` (default: viewer), shown to the
others — and every unmasked view of a ticket's personal data leaves an audit row (throttled, :mod:`monitor.audit`).

Masking happens on the JSON just before it is returned, so the queue, the incidents and the reports never need to
know who asked; the browser shows what it gets.
"""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from monitor.audit import record_view
from monitor.privacy import mask_text, mask_url
from monitor.web.api import WebState, client_address
from monitor.web.auth import Principal

#: Ticket fields holding free text about the complainant (the handle in ``complainant`` is masked only where it
#: carries a contact: ``mask_text`` leaves plain names alone).
TICKET_TEXT = ("title", "complainant", "content", "demand", "followup_note", "outcome_note")


def masked_for(state: WebState, who: Principal) -> bool:
    """Whether ``who`` sees personal fields masked."""
    return who.role in state.config.privacy.mask_roles


def mask_ticket(data: dict[str, Any]) -> dict[str, Any]:
    """A ticket's JSON with its personal fields masked (evidence links keep host and path, lose query values)."""
    for name in TICKET_TEXT:
        if isinstance(data.get(name), str):
            data[name] = mask_text(data[name])
    if isinstance(data.get("evidence"), list):
        data["evidence"] = [mask_url(u) if isinstance(u, str) else u for u in data["evidence"]]
    for e in data.get("events") or []:
        if isinstance(e.get("note"), str):
            e["note"] = mask_text(e["note"])
    return data


def mask_incident(data: dict[str, Any]) -> dict[str, Any]:
    """An incident detail's JSON masked: post titles and texts (author handles stay), notes, the ticket."""
    incident = data.get("incident") or {}
    if isinstance(incident.get("title"), str):
        incident["title"] = mask_text(incident["title"])
    for p in data.get("posts") or []:
        p["title"], p["text"] = mask_text(p.get("title") or ""), mask_text(p.get("text") or "")
    for e in data.get("events") or []:
        e["note"] = mask_text(e.get("note") or "")
    for n in data.get("notifications") or []:
        n["title"] = mask_text(n.get("title") or "")
    if data.get("ticket"):
        mask_ticket(data["ticket"])
    return data


def audit_ticket_view(state: WebState, who: Principal, request: Request, ticket_ids: list[int],
                      what: str = "detail") -> None:
    """Record that ``who`` saw these tickets' personal data unmasked (blocking; call through ``run_db``).

    One row per (actor, ticket) per 10 minutes for a ticket page; a list is one row per (actor, "tickets") per 10
    minutes naming the ids, so a console polling its list every 10 s does not flood the log.
    """
    if masked_for(state, who) or not ticket_ids:
        return
    now, address = state.clock.now(), client_address(request)
    with state.engine.begin() as conn:
        if what == "list":
            record_view(conn, who.actor, who.role, "tickets", address, now,
                        detail=json.dumps({"list": ticket_ids[:500]}))
        else:
            for tid in ticket_ids:
                record_view(conn, who.actor, who.role, f"ticket:{tid}", address, now, detail=what)
