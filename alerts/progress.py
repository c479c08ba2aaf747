"""The complainant's progress page (全流程可视化): an unguessable link per ticket showing where the complaint
stands and which promised times were kept — and nothing else.

The token (``secrets.token_urlsafe(24)``: 192 random bits) is made lazily, when a handler asks for the link. The
public view is built from the ticket's state and timestamps only: no title, content, names, notes or assignee ever
enter it, so there is nothing personal or internal for it to leak, whatever the ticket holds.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from alerts import tickets as tk
from alerts.queue import resolve_restarts, ticket_times
from monitor.db.schema import tickets as tickets_t

if TYPE_CHECKING:
    from monitor.config import Config

#: Bytes of randomness in a token (token_urlsafe gives 4/3 as many characters: 32).
TOKEN_BYTES = 24
#: What a token can look like; anything else is refused before the database is asked.
TOKEN_SHAPE = re.compile(r"^[A-Za-z0-9_-]{20,64}$")
#: The public page's promise labels (the milestones, in words a complainant understands).
PROMISES: dict[str, tuple[str, str]] = {
    tk.ACKNOWLEDGE: ("受理您的投诉", "complaint acknowledged"),
    tk.RESPOND: ("首次答复", "first reply"),
    tk.VERIFY: ("核实情况", "facts verified"),
    tk.RESOLVE: ("给出处理方案", "solution given"),
}


def new_token() -> str:
    """A fresh unguessable token."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def ensure_token(conn: Connection, ticket_id: int) -> str | None:
    """The ticket's public token, made now if it has none (None: no such ticket). Call in a transaction.

    Two handlers asking at once get the same token: the update only fills an empty column, and both read back.
    """
    current = conn.execute(select(tickets_t.c.public_token).where(tickets_t.c.id == ticket_id)).first()
    if current is None:
        return None
    if current.public_token:
        return str(current.public_token)
    conn.execute(update(tickets_t).where(tickets_t.c.id == ticket_id, tickets_t.c.public_token.is_(None))
                 .values(public_token=new_token()))
    return str(conn.execute(select(tickets_t.c.public_token).where(tickets_t.c.id == ticket_id)).scalar_one())


def progress_url(config: Config, token: str) -> str:
    """The public link of a token under ``alerts.console_url``."""
    return f"{config.alerts.console_url.rstrip('/')}/p/{token}"


def public_view(engine: Engine, config: Config, token: str, now: datetime) -> dict[str, Any] | None:
    """What the complainant may see for ``token``, or None (unknown or malformed token).

    Only: the ticket number, the current stage (Chinese and English), the stage bar, the registration date, and
    each promised time (deadline in the display timezone) with whether it was kept.
    """
    if not TOKEN_SHAPE.match(token or ""):
        return None
    # Only the columns the view needs are read: state, number, severity (for the SLA policy) and the times.
    cols = [tickets_t.c.id, tickets_t.c.number, tickets_t.c.state, tickets_t.c.severity, tickets_t.c.created_at,
            tickets_t.c.acknowledged_at, tickets_t.c.responded_at, tickets_t.c.verified_at,
            tickets_t.c.resolved_at, tickets_t.c.closed_at, tickets_t.c.reminded]
    with engine.connect() as conn:
        row = conn.execute(select(*cols).where(tickets_t.c.public_token == token)).first()
        if row is None:
            return None
        restart = resolve_restarts(conn, [row.id]).get(row.id)
    tz = config.tz
    milestones = tk.status(ticket_times(row, restart), config.queue.policy(row.severity), now)
    current = tk.STATES.index(row.state) if row.state in tk.STATES else 0
    stages = [{"state": s, "zh": tk.STATE_LABELS[s][0], "en": tk.STATE_LABELS[s][1],
               "status": "done" if i < current else ("current" if i == current else "todo")}
              for i, s in enumerate(tk.STATES)]
    promises = []
    for m in milestones:
        promises.append({"milestone": m.milestone, "zh": PROMISES[m.milestone][0], "en": PROMISES[m.milestone][1],
                         "deadline": m.deadline.astimezone(tz).isoformat(timespec="minutes"),
                         "met": m.met_at is not None and not m.waived,
                         "on_time": bool(m.met_in_time) if m.met_at is not None and not m.waived else None,
                         "waived": m.waived})
    return {"number": row.number, "state": row.state, "stage_zh": tk.STATE_LABELS[row.state][0],
            "stage_en": tk.STATE_LABELS[row.state][1], "stages": stages,
            "registered": row.created_at.astimezone(tz).date().isoformat(), "promises": promises,
            "closed": row.state == tk.CLOSED}


__all__ = ["PROMISES", "TOKEN_BYTES", "ensure_token", "new_token", "progress_url", "public_view"]
