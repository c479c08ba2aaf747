"""Complainant and author profiles (:mod:`alerts.profiles`): one person's accounts across platforms with the
evidence for each link, their counts, reach and flags.

Roles in ``privacy.mask_roles`` see handles partly hidden (first character + ``***``); contact values in the
evidence are masked for everyone (the profile never carries them in the clear). An unmasked view (handler, admin)
leaves a throttled "view" row in the audit log, subject ``person:<source>:<handle>``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request

from alerts.profiles import build_profile, mask_handle, ticket_person
from monitor.audit import record_view
from monitor.web.api import ApiError, State, Viewer, WebState, client_address, not_found, run_db
from monitor.web.auth import Principal
from monitor.web.privacy_view import masked_for

router = APIRouter(prefix="/api", tags=["profiles"])


def profile_for(state: WebState, who: Principal, request: Request, source: str, author: str) -> dict[str, Any]:
    """The profile JSON as ``who`` may see it, with the audit row of an unmasked view (blocking)."""
    now = state.clock.now()
    data = build_profile(state.engine, state.config, source=source, author=author, now=now).to_json()
    if masked_for(state, who):
        return mask_profile(data)
    with state.engine.begin() as conn:
        record_view(conn, who.actor, who.role, f"person:{source}:{author}", client_address(request), now,
                    detail="profile")
    return data


def mask_profile(data: dict[str, Any]) -> dict[str, Any]:
    """A profile's JSON with every handle partly hidden; same-handle evidence names the handle, so it is redone."""
    data["handle"] = mask_handle(data["handle"])
    for account in data["accounts"]:
        handle = account["handle"]
        account["handle"] = mask_handle(handle)
        for link in account["links"]:
            if handle:
                link["evidence"] = link["evidence"].replace(handle, mask_handle(handle))
    return data


@router.get("/profiles", summary="A person's profile: linked accounts with evidence, counts, reach, flags")
async def get_profile(request: Request, state: State, who: Viewer, source: str = Query(..., min_length=1),
                      author: str = Query(..., min_length=1)) -> dict[str, Any]:
    """The person posting as ``author`` on ``source`` over the last 90 days."""
    return await run_db(profile_for, state, who, request, source, author)


@router.get("/tickets/{ref}/profile", summary="The profile of a ticket's complainant")
async def get_ticket_profile(ref: str, request: Request, state: State, who: Viewer) -> dict[str, Any]:
    """The author of a portal ticket's post, or the author with the most posts in an incident ticket's incident;
    404 for an unknown ticket, 422 when the ticket names no author."""
    ticket = await run_db(state.queue().get, ref)
    if ticket is None:
        raise not_found("ticket", ref)
    person = await run_db(ticket_person, state.engine, ticket)
    if person is None:
        raise ApiError(422, "no_author", f"工单 {ref} 没有可识别的投诉人 / ticket {ref} names no author")
    data = await run_db(profile_for, state, who, request, person[0], person[1])
    data["ticket"] = ticket.id
    return data
