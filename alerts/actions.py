"""What a person does with incidents, silences and the outbox; shared by the CLI and the web console.

Each action is one transaction and leaves an ``incident_events`` row (who, when, what), so the incident's history
shows who acknowledged it, who resolved it and whether the team called it real or noise (kept for tuning).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.engine import Connection, Engine

from alerts.outbox import FAILED, PENDING
from monitor.db.schema import incident_events, incident_points, incident_posts, incidents, notifications, silences
from monitor.errors import MonitorError

#: Verdicts a person can give an incident.
VERDICTS = ("real", "noise")
#: Outbox status of a message dropped because its incident was resolved before it went out.
CANCELLED = "cancelled"


class NotFoundError(MonitorError):
    """An incident, silence or notification id that does not exist."""


@dataclass(frozen=True)
class IncidentRow:
    """One line of ``monitor incidents list``."""

    id: int
    opened_at: datetime
    updated_at: datetime
    status: str
    severity: str
    title: str
    posts: int
    authors: int
    sources: list[str]
    acked_by: str | None
    feedback: str | None
    ticket_id: int | None


def list_incidents(engine: Engine, *, status: str | None = None, limit: int = 50) -> list[IncidentRow]:
    """Incidents, newest first; ``status`` = open, quiet, resolved, or ``active`` (open or quiet)."""
    query = select(incidents).order_by(incidents.c.opened_at.desc(), incidents.c.id.desc()).limit(limit)
    if status == "active":
        query = query.where(incidents.c.status.in_(("open", "quiet")))
    elif status:
        query = query.where(incidents.c.status == status)
    with engine.connect() as conn:
        return [IncidentRow(r.id, r.opened_at, r.updated_at, r.status, r.severity, r.title, r.posts, r.authors,
                            list(r.sources or []), r.acked_by, r.feedback, r.ticket_id) for r in conn.execute(query)]


def incident_detail(engine: Engine, incident_id: int) -> dict[str, Any]:
    """Everything about one incident: the row, its timeline, members, events and notifications."""
    with engine.connect() as conn:
        row = _row(conn, incident_id)
        points = conn.execute(select(incident_points).where(incident_points.c.incident_id == incident_id)
                              .order_by(incident_points.c.at, incident_points.c.id)).all()
        members = conn.execute(select(incident_posts).where(incident_posts.c.incident_id == incident_id)
                               .order_by(incident_posts.c.added_at, incident_posts.c.post_uid)).all()
        events = conn.execute(select(incident_events).where(incident_events.c.incident_id == incident_id)
                              .order_by(incident_events.c.at, incident_events.c.id)).all()
        sent = conn.execute(select(notifications).where(notifications.c.subject == f"incident:{incident_id}")
                            .order_by(notifications.c.id)).all()
    return {
        "incident": dict(row._mapping),
        "timeline": [dict(p._mapping) for p in points],
        "posts": [dict(m._mapping) for m in members],
        "events": [dict(e._mapping) for e in events],
        "notifications": [{k: v for k, v in n._mapping.items() if k != "message"} | {"title": n.message["title"]}
                          for n in sent],
    }


def acknowledge(engine: Engine, incident_id: int, actor: str, now: datetime, note: str = "") -> None:
    """Someone is on it: repeat reminders stop (a higher severity still notifies)."""
    with engine.begin() as conn:
        row = _row(conn, incident_id)
        if row.acked_at is None:
            conn.execute(update(incidents).where(incidents.c.id == incident_id).values(acked_at=now, acked_by=actor))
        _event(conn, incident_id, now, actor, "acknowledged", note)


def resolve(engine: Engine, incident_id: int, actor: str, now: datetime, note: str = "") -> int:
    """Close the incident; messages about it still waiting are dropped. Returns how many were dropped."""
    with engine.begin() as conn:
        _row(conn, incident_id)
        conn.execute(update(incidents).where(incidents.c.id == incident_id)
                     .values(status="resolved", resolved_at=now, resolved_by=actor))
        dropped = conn.execute(update(notifications).where(
            notifications.c.subject == f"incident:{incident_id}", notifications.c.status == PENDING,
            notifications.c.attempts == 0).values(status=CANCELLED, last_error=f"resolved by {actor}")).rowcount
        _event(conn, incident_id, now, actor, "resolved", note)
    return int(dropped or 0)


def feedback(engine: Engine, incident_id: int, verdict: str, actor: str, now: datetime, note: str = "") -> None:
    """Record the team's verdict: ``real`` (a crisis worth the alert) or ``noise`` (should not have fired)."""
    if verdict not in VERDICTS:
        raise MonitorError(f"unknown verdict {verdict!r}; use real or noise")
    with engine.begin() as conn:
        _row(conn, incident_id)
        conn.execute(update(incidents).where(incidents.c.id == incident_id)
                     .values(feedback=verdict, feedback_by=actor, feedback_at=now))
        _event(conn, incident_id, now, actor, f"marked_{verdict}", note)


def feedback_summary(engine: Engine) -> dict[str, int]:
    """How many incidents the team called real, noise, or has not judged (for tuning the detector)."""
    with engine.connect() as conn:
        rows = conn.execute(select(incidents.c.feedback, func.count()).group_by(incidents.c.feedback)).all()
    return {(k or "unjudged"): int(v) for k, v in rows}


# -- silences --------------------------------------------------------------------------------------------------------
def add_silence(engine: Engine, *, until: datetime, now: datetime, actor: str, watch: str | None = None,
                source: str | None = None, keyword: str | None = None, incident_id: int | None = None,
                comment: str = "") -> int:
    """Silence matching incidents until ``until``; returns the silence's id."""
    if not (watch or source or keyword or incident_id):
        raise MonitorError("a silence needs at least one of --watch, --source, --keyword or --incident")
    if until <= now:
        raise MonitorError("the silence would end before it starts; give a later --until or a --for duration")
    with engine.begin() as conn:
        if incident_id is not None:
            _row(conn, incident_id)
        sid = conn.execute(silences.insert().values(
            watch=watch, source=source, keyword=keyword, incident_id=incident_id, starts_at=now, ends_at=until,
            comment=comment, created_by=actor, created_at=now).returning(silences.c.id)).scalar_one()
        if incident_id is not None:
            _event(conn, incident_id, now, actor, "silenced", comment)
    return int(sid)


def list_silences(engine: Engine, now: datetime, *, include_expired: bool = False) -> list[dict[str, Any]]:
    """Silences in force (or all), newest first."""
    query = select(silences).order_by(silences.c.id.desc())
    if not include_expired:
        query = query.where(silences.c.ends_at > now)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def expire_silence(engine: Engine, silence_id: int, now: datetime) -> None:
    """End a silence now."""
    with engine.begin() as conn:
        done = conn.execute(update(silences).where(silences.c.id == silence_id, silences.c.ends_at > now)
                            .values(ends_at=now)).rowcount
    if not done:
        raise NotFoundError(f"no silence {silence_id} in force; see `monitor silences list`")


# -- the outbox -------------------------------------------------------------------------------------------------------
def list_notifications(engine: Engine, *, status: str | None = None, limit: int = 50) -> list[dict[str, Any]]:
    """Outbox rows, newest first, without their bodies."""
    query = select(notifications).order_by(notifications.c.id.desc()).limit(limit)
    if status:
        query = query.where(notifications.c.status == status)
    with engine.connect() as conn:
        return [{k: v for k, v in r._mapping.items() if k != "message"} | {"title": r.message.get("title", "")}
                for r in conn.execute(query)]


def retry_failed(engine: Engine, now: datetime, ids: list[int] | None = None) -> int:
    """Put failed (given-up) rows back in the queue, due now; returns how many."""
    query = update(notifications).where(notifications.c.status == FAILED)
    if ids:
        query = query.where(notifications.c.id.in_(ids))
    with engine.begin() as conn:
        return int(conn.execute(query.values(status=PENDING, next_attempt_at=now, created_at=now)).rowcount or 0)


def _row(conn: Connection, incident_id: int) -> Any:
    row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one_or_none()
    if row is None:
        raise NotFoundError(f"no incident {incident_id}; see `monitor incidents list`")
    return row


def _event(conn: Connection, incident_id: int, now: datetime, actor: str, action: str, note: str) -> None:
    conn.execute(incident_events.insert().values(incident_id=incident_id, at=now, actor=actor[:64], action=action,
                                                 note=note))
