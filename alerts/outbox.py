"""The outbox: notifications are rows written in the same transaction as the change that caused them.

A delivery worker (:class:`alerts.delivery.Deliverer`) sends due rows with retries and backoff. Because the row and
the change commit together, a crash can neither lose a notification (the change is there, so is its row) nor
invent one (no change, no row). The row's ``key`` is an idempotency key: writing the same notification twice (a
retried transaction, a replayed stream) stores it once.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection

from alerts.message import Message
from monitor.db.schema import notifications

PENDING, SENDING, SENT, FAILED, SILENCED = "pending", "sending", "sent", "failed", "silenced"


def row_key(key: str, channel: str) -> str:
    """The idempotency key of one notification to one channel."""
    return f"{key}>{channel}"[:200]


def enqueue(conn: Connection, *, key: str, channels: Sequence[str], message: Message, subject: str,
            now: datetime, not_before: datetime | None = None, status: str = PENDING) -> list[int]:
    """Write ``message`` for each channel in the caller's transaction; returns the new rows' ids.

    ``key`` names the notification (``incident:12#3``, ``ticket:5:overdue:acknowledge``); a row whose key is
    already stored is left alone, so calling this twice for one event sends it once. ``not_before`` holds the
    delivery back (group wait, quiet hours). ``status=silenced`` records a message that a silence stopped.
    """
    due = not_before or now
    rows = [{"key": row_key(key, ch), "delivery_id": str(uuid.uuid4()), "channel": ch, "kind": message.kind,
             "subject": subject, "severity": message.severity, "message": message.to_json(), "status": status,
             "attempts": 0, "created_at": now, "not_before": due, "next_attempt_at": due} for ch in channels]
    if not rows:
        return []
    insert = pg_insert if conn.dialect.name == "postgresql" else sqlite_insert
    stmt = insert(notifications).on_conflict_do_nothing(index_elements=["key"]).returning(notifications.c.id)
    ids = []
    for row in rows:  # one statement per row: RETURNING with executemany is not portable across drivers
        got = conn.execute(stmt, row).scalar()
        if got is not None:
            ids.append(int(got))
    return ids


def pending_for(conn: Connection, subject: str) -> list[tuple[int, str, str, datetime, str]]:
    """(id, channel, key, not_before, kind) of the rows of ``subject`` not yet handed to a channel."""
    rows = conn.execute(select(notifications.c.id, notifications.c.channel, notifications.c.key,
                               notifications.c.not_before, notifications.c.kind)
                        .where(notifications.c.subject == subject, notifications.c.status == PENDING,
                               notifications.c.attempts == 0).order_by(notifications.c.id))
    return [(r.id, r.channel, r.key, r.not_before, r.kind) for r in rows]
