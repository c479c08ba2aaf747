"""Personal data, for admins: the audit log, and a person's data exported or erased (subject rights).

The same operations as ``monitor privacy audit|export|delete``; each export and deletion writes its own audit row
(actor, role, client address) in the transaction that reads or erases the data.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from monitor.audit import ACTIONS, list_entries
from monitor.web.api import Admin, ApiError, State, client_address, iso, run_db

router = APIRouter(prefix="/api/privacy", tags=["privacy"])


class DeleteIn(BaseModel):
    """Whose data to erase: the author's handle (name or id as collected), optionally on one source only."""

    model_config = ConfigDict(extra="forbid")

    person: str = Field(min_length=1, max_length=255)
    source: str | None = Field(default=None, max_length=64)


def _since(text: str) -> timedelta:
    from monitor.durations import parse_duration

    try:
        return timedelta(seconds=parse_duration(text))
    except ValueError as exc:
        raise ApiError(422, "invalid", f"时间范围有误 / bad since {text!r}: {exc}") from None


@router.get("/audit", summary="The audit log of personal data (views, exports, deletions, purges), newest first")
async def audit(state: State, _who: Admin, since: str = "7d", action: str | None = None,
                subject: str | None = None, actor: str | None = None,
                limit: int = Query(500, ge=1, le=5000)) -> dict[str, Any]:
    """``since``: a duration (``7d``, ``12h``); ``action``: view, export, delete, purge or reveal."""
    if action and action not in ACTIONS:
        raise ApiError(422, "invalid", f"未知的操作 {action!r} / unknown action; use {', '.join(ACTIONS)}")
    start = state.clock.now() - _since(since)
    rows = await run_db(list_entries, state.engine, since=start, action=action, subject=subject, actor=actor,
                        limit=limit)
    return {"items": [{"id": r["id"], "at": iso(r["at"], state.tz), "actor": r["actor"], "role": r["role"],
                       "action": r["action"], "subject": r["subject"], "detail": r["detail"],
                       "address": r["address"]} for r in rows]}


@router.get("/export", summary="Everything held about one person (posts, tickets, incidents), as JSON")
async def export(request: Request, state: State, who: Admin, person: str = Query(min_length=1, max_length=255),
                 source: str | None = None) -> dict[str, Any]:
    """``person`` is the author's handle as collected; ``source`` limits it to one source. Audited."""
    from monitor.retention import export_person

    return await run_db(export_person, state.engine, state.config, person, source, state.clock.now(),
                        actor=who.actor, role=who.role, address=client_address(request))


@router.post("/delete", summary="Erase one person: delete their posts, erase their data from tickets")
async def delete(body: DeleteIn, request: Request, state: State, who: Admin) -> dict[str, Any]:
    """Tickets, their history and incidents stay; the counts of what was erased come back. Audited."""
    from monitor.retention import delete_person

    if not body.person.strip():
        raise ApiError(422, "invalid", "请给出用户名 / give the person's handle")
    return await run_db(delete_person, state.engine, state.config, body.person, body.source, state.clock.now(),
                        actor=who.actor, role=who.role, address=client_address(request))
