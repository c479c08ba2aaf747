"""The audit log of personal data: who viewed a ticket's personal fields unmasked, who exported or deleted a
person's data, and what the retention job purged (table ``audit_log``).

Rows are written in the caller's transaction (``record``), so an export or a deletion and its audit row commit
together. Views are throttled (:func:`record_view`): the console polls every 10 s, and one row per person and ticket
per ten minutes says as much as a row per poll.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.engine import Connection, Engine

from monitor.db.schema import audit_log

#: One "view" row per (actor, subject) within this window.
VIEW_THROTTLE = timedelta(minutes=10)
ACTIONS = ("view", "export", "delete", "purge", "reveal")


def record(conn: Connection, actor: str, role: str, action: str, subject: str, detail: str = "",
           address: str = "", *, now: datetime | None = None) -> int:
    """Write one audit row (in the caller's transaction); returns its id. Long values are cut to the columns."""
    from monitor.clock import SystemClock

    at = now or SystemClock().now()
    return int(conn.execute(audit_log.insert().values(
        at=at, actor=actor[:64], role=role[:16], action=action[:24], subject=subject[:128], detail=detail,
        address=address[:64]).returning(audit_log.c.id)).scalar_one())


def record_view(conn: Connection, actor: str, role: str, subject: str, address: str, now: datetime,
                detail: str = "", throttle: timedelta = VIEW_THROTTLE) -> bool:
    """A "view" row unless ``actor`` already has one for ``subject`` within ``throttle``; True when written."""
    recent = conn.execute(select(audit_log.c.id).where(
        audit_log.c.subject == subject[:128], audit_log.c.actor == actor[:64], audit_log.c.action == "view",
        audit_log.c.at > now - throttle).limit(1)).first()
    if recent is not None:
        return False
    record(conn, actor, role, "view", subject, detail, address, now=now)
    return True


def list_entries(engine: Engine, *, since: datetime | None = None, action: str | None = None,
                 subject: str | None = None, actor: str | None = None, limit: int = 500) -> list[dict[str, Any]]:
    """Audit rows, newest first, as dicts (``at`` aware UTC); filters are exact matches."""
    query = select(audit_log).order_by(audit_log.c.at.desc(), audit_log.c.id.desc()).limit(limit)
    if since is not None:
        query = query.where(audit_log.c.at >= since)
    if action:
        query = query.where(audit_log.c.action == action)
    if subject:
        query = query.where(audit_log.c.subject == subject)
    if actor:
        query = query.where(audit_log.c.actor == actor)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
