"""Incident handling and notification state; incident events, silences, the outbox, tickets and their events.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from typing import Any

import sqlalchemy as sa
from alembic import op

from monitor.db.schema import BigId, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

_INCIDENT_COLUMNS: list[tuple[str, Any, bool, str | None]] = [
    ("watches", sa.JSON, True, None), ("category", sa.String(32), True, None),
    ("acked_at", UTCDateTime, True, None), ("acked_by", sa.String(64), True, None),
    ("resolved_at", UTCDateTime, True, None), ("resolved_by", sa.String(64), True, None),
    ("feedback", sa.String(8), True, None), ("feedback_by", sa.String(64), True, None),
    ("feedback_at", UTCDateTime, True, None), ("notified_at", UTCDateTime, True, None),
    ("notified_severity", sa.String(8), True, None), ("notified_posts", sa.Integer, False, "0"),
    ("notify_seq", sa.Integer, False, "0"), ("ticket_id", sa.Integer, True, None),
]


def upgrade() -> None:
    """Add the columns and tables."""
    with op.batch_alter_table("incidents") as batch:
        for name, type_, nullable, default in _INCIDENT_COLUMNS:
            batch.add_column(sa.Column(name, type_, nullable=nullable, server_default=default))
    op.create_table(
        "incident_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False, server_default=""),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("ix_incident_events_incident", "incident_events", ["incident_id", "at"])
    op.create_table(
        "silences",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("watch", sa.String(64), nullable=True),
        sa.Column("source", sa.String(64), nullable=True),
        sa.Column("keyword", sa.String(128), nullable=True),
        sa.Column("incident_id", sa.Integer, nullable=True),
        sa.Column("starts_at", UTCDateTime, nullable=False),
        sa.Column("ends_at", UTCDateTime, nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "notifications",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(200), nullable=False, unique=True),
        sa.Column("delivery_id", sa.String(36), nullable=False, unique=True),
        sa.Column("channel", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("message", sa.JSON, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("not_before", UTCDateTime, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.Column("last_error", sa.Text, nullable=True),
    )
    op.create_index("ix_notifications_due", "notifications", ["status", "next_attempt_at"])
    op.create_index("ix_notifications_subject", "notifications", ["subject"])
    op.create_table(
        "tickets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("number", sa.String(32), nullable=False, unique=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("tags", sa.JSON, nullable=True),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("complainant", sa.String(255), nullable=False, server_default=""),
        sa.Column("platform", sa.String(255), nullable=False, server_default=""),
        sa.Column("occurred_at", UTCDateTime, nullable=True),
        sa.Column("content", sa.Text, nullable=False, server_default=""),
        sa.Column("demand", sa.Text, nullable=False, server_default=""),
        sa.Column("evidence", sa.JSON, nullable=True),
        sa.Column("incident_id", sa.Integer, nullable=True),
        sa.Column("post_uid", sa.String(320), nullable=True, unique=True),
        sa.Column("assignee", sa.String(64), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("acknowledged_at", UTCDateTime, nullable=True),
        sa.Column("responded_at", UTCDateTime, nullable=True),
        sa.Column("verified_at", UTCDateTime, nullable=True),
        sa.Column("resolved_at", UTCDateTime, nullable=True),
        sa.Column("closed_at", UTCDateTime, nullable=True),
        sa.Column("reopened", sa.Integer, nullable=False, server_default="0"),
        sa.Column("satisfaction", sa.Integer, nullable=True),
        sa.Column("followup_note", sa.Text, nullable=True),
        sa.Column("escalation", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reminded", sa.JSON, nullable=True),
    )
    op.create_index("ix_tickets_state", "tickets", ["state"])
    op.create_index("ix_tickets_incident", "tickets", ["incident_id"])
    op.create_table(
        "ticket_events",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False, server_default=""),
        sa.Column("action", sa.String(16), nullable=False),
        sa.Column("from_state", sa.String(16), nullable=True),
        sa.Column("to_state", sa.String(16), nullable=True),
        sa.Column("note", sa.Text, nullable=False, server_default=""),
        sa.Column("data", sa.JSON, nullable=True),
    )
    op.create_index("ix_ticket_events_ticket", "ticket_events", ["ticket_id", "at"])


def downgrade() -> None:
    """Drop what upgrade added."""
    for table in ("ticket_events", "tickets", "notifications", "silences", "incident_events"):
        op.drop_table(table)
    with op.batch_alter_table("incidents") as batch:
        for name, *_ in reversed(_INCIDENT_COLUMNS):
            batch.drop_column(name)
