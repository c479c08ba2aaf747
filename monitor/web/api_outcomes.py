"""How a complaint ended, from the console: the follow-up visit (satisfaction and NPS), compensation offered, and
the outcome (withdrawn or not, a note). Each answer is the ticket as GET /api/tickets/{ref} returns it."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel, ConfigDict, Field

from alerts.outcomes import Outcomes
from monitor.web.api import Handler, State, WebState
from monitor.web.api_tickets import _act

router = APIRouter(prefix="/api", tags=["tickets"])


class FollowupIn(BaseModel):
    """The 回访: satisfaction 1-5, the NPS answer 0-10 (would you recommend us), a note; ``close`` (default)
    closes the ticket, false keeps it in 回访."""

    model_config = ConfigDict(extra="forbid")
    satisfaction: int = Field(ge=1, le=5)
    nps: int | None = Field(default=None, ge=0, le=10)
    note: str = Field(default="", max_length=4000)
    close: bool = True


class CompensationIn(BaseModel):
    """Compensation offered: kind (refund, voucher, replacement, apology, other), amount in yuan, a note."""

    model_config = ConfigDict(extra="forbid")
    kind: str = Field(min_length=1, max_length=16)
    amount: str | int | float | None = Field(default=None)
    note: str = Field(default="", max_length=2000)


class OutcomeIn(BaseModel):
    """Whether the complainant withdrew the public complaint, and/or a note on how it ended."""

    model_config = ConfigDict(extra="forbid")
    withdrawn: bool | None = None
    note: str | None = Field(default=None, max_length=4000)


def _outcomes(state: WebState) -> Outcomes:
    return Outcomes(state.engine, state.config, state.clock)


_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "the ticket after the action (as GET /api/tickets/{ref})"},
    404: {"description": "no such ticket"}, 409: {"description": "refused (message says why)"}}


@router.post("/tickets/{ref}/followup", summary="Record the follow-up visit (回访)", responses=_RESPONSES)
async def followup(ref: str, body: FollowupIn, state: State, who: Handler) -> dict[str, Any]:
    """Only a ticket in 回访 takes a follow-up; by default it is closed with it."""
    return await _act(state, ref, lambda _q: _outcomes(state).followup(
        ref, body.satisfaction, nps=body.nps, note=body.note, actor=who.actor, close=body.close,
        now=state.clock.now()))


@router.post("/tickets/{ref}/compensation", summary="Record compensation offered", responses=_RESPONSES)
async def compensation(ref: str, body: CompensationIn, state: State, who: Handler) -> dict[str, Any]:
    """Adds one entry to the ticket's compensation list (amounts in CNY, kept as decimal strings)."""
    return await _act(state, ref, lambda _q: _outcomes(state).compensation(
        ref, body.kind, amount=str(body.amount) if body.amount is not None else None, note=body.note,
        actor=who.actor, now=state.clock.now()))


@router.post("/tickets/{ref}/outcome", summary="Record the outcome: withdrawn or not, a note", responses=_RESPONSES)
async def outcome(ref: str, body: OutcomeIn, state: State, who: Handler) -> dict[str, Any]:
    """Give ``withdrawn`` and/or ``note``."""
    return await _act(state, ref, lambda _q: _outcomes(state).outcome(
        ref, withdrawn=body.withdrawn, note=body.note, actor=who.actor, now=state.clock.now()))
