"""The reply-script library (标准话术库) in the console: suggestions with their filled-in text for a ticket,
recording what was sent, and (for admins) writing new scripts and versions or retiring one.

Everything goes through :class:`alerts.scripts.ScriptLibrary`; a script that cannot be saved or used is 422 with
its bilingual message, a reply the lifecycle refuses 409.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, ConfigDict, Field

from alerts import tickets as tk
from alerts.scripts import ScriptError, ScriptLibrary
from monitor.web.api import Admin, ApiError, Handler, State, Viewer, WebState, iso_text, not_found, run_db
from monitor.web.api_tickets import add_outcomes, ticket_json

router = APIRouter(prefix="/api", tags=["scripts"])


class ReplyIn(BaseModel):
    """What was sent to the complainant: from a script (``script_key``, ``version``; the text may be edited) or
    written from scratch (no key)."""

    model_config = ConfigDict(extra="forbid")
    script_key: str | None = Field(default=None, max_length=64)
    version: int | None = Field(default=None, ge=1)
    text: str = Field(min_length=1, max_length=8000)


class ScriptIn(BaseModel):
    """A new script (no ``key``, or a new one) or a new version of the script ``key``."""

    model_config = ConfigDict(extra="forbid")
    key: str | None = Field(default=None, max_length=64)
    category: str | None = Field(default=None, max_length=32)
    stage: str = Field(min_length=1, max_length=16)
    title: str = Field(min_length=1, max_length=200)
    body: str = Field(min_length=1, max_length=8000)


def _library(state: WebState) -> ScriptLibrary:
    return ScriptLibrary(state.engine, state.config, state.clock)


def _script_json(state: WebState, script: Any) -> dict[str, Any]:
    out: dict[str, Any] = script.to_json()
    out["created_at"] = iso_text(out["created_at"], state.tz)
    return out


@router.get("/tickets/{ref}/scripts", summary="Reply scripts that fit the ticket, best first, filled in")
async def suggestions(ref: str, state: State, who: Viewer) -> dict[str, Any]:
    """The scripts of the ticket's category (or any) and of the stages its state implies, ranked by how well
    their text matches the complaint and how often handlers chose them for this category; ``text`` is filled in."""
    def work() -> dict[str, Any]:
        ticket = state.queue().get(ref)
        if ticket is None:
            raise not_found("ticket", ref)
        found = _library(state).suggest(ticket, handler=who.name)
        return {"ticket_id": ticket.id, "state": ticket.state, "category": ticket.category,
                "items": [dict(_script_json(state, s.script), text=s.text, score=round(s.score, 4),
                               similarity=round(s.similarity, 4), uses=s.uses) for s in found]}
    return await run_db(work)


@router.post("/tickets/{ref}/reply", summary="Record what was replied to the complainant (from a script or not)")
async def reply(ref: str, body: ReplyIn, state: State, who: Handler) -> dict[str, Any]:
    """Writes the reply into the ticket's history (``已回复：…``), counts it as the first response if none was
    recorded, and remembers which script it came from. Returns the ticket."""
    def work() -> dict[str, Any]:
        if state.queue().get(ref) is None:
            raise not_found("ticket", ref)
        try:
            after = _library(state).record_use(ref, body.script_key or None, body.version, body.text,
                                               actor=who.actor, now=state.clock.now())
        except ScriptError as exc:
            raise ApiError(422, "invalid", str(exc)) from None
        except tk.TicketError as exc:
            raise ApiError(409, "refused", str(exc)) from None
        return add_outcomes(state, [ticket_json(after, state.tz)])[0]
    return await run_db(work)


@router.get("/scripts", summary="The reply-script library")
async def list_scripts(state: State, _who: Viewer, all_versions: bool = Query(False, alias="versions"),
                       include_inactive: bool = Query(False, alias="inactive")) -> dict[str, Any]:
    """The newest version of each active script; ``inactive=1`` adds retired ones, ``versions=1`` every
    version."""
    found = await run_db(_library(state).scripts, include_inactive=include_inactive, all_versions=all_versions)
    return {"items": [_script_json(state, s) for s in found]}


@router.post("/scripts", summary="Write a new script, or a new version of one (admin)")
async def save_script(body: ScriptIn, state: State, who: Admin) -> dict[str, Any]:
    """With the ``key`` of an existing script: its next version (the new wording is offered from now on)."""
    try:
        saved = await run_db(_library(state).save, key=body.key, category=body.category or None, stage=body.stage,
                             title=body.title, body=body.body, actor=who.actor, now=state.clock.now())
    except ScriptError as exc:
        raise ApiError(422, "invalid", str(exc)) from None
    return _script_json(state, saved)


@router.post("/scripts/{key}/deactivate", summary="Retire a script (admin)")
async def deactivate(key: str, state: State, _who: Admin) -> dict[str, Any]:
    """No version of it is offered any more; saving a new version brings it back."""
    try:
        done = await run_db(_library(state).deactivate, key)
    except ScriptError:
        raise not_found("script", key) from None
    return _script_json(state, done)
