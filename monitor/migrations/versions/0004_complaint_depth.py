"""Complaint-handling depth: progress page token, follow-up, compensation and outcome on tickets; the reply-script
library and its use history; the personal-data audit log.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from monitor.db.schema import BigId, UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the columns and tables."""
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("public_token", sa.String(64), nullable=True))
        batch.add_column(sa.Column("nps", sa.Integer, nullable=True))
        batch.add_column(sa.Column("followup_at", UTCDateTime, nullable=True))
        batch.add_column(sa.Column("compensation", sa.JSON, nullable=True))
        batch.add_column(sa.Column("withdrawn", sa.Boolean, nullable=True))
        batch.add_column(sa.Column("outcome_note", sa.Text, nullable=True))
        batch.create_unique_constraint("uq_tickets_public_token", ["public_token"])
    op.create_table(
        "reply_scripts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("active", sa.Boolean, nullable=False, server_default="1"),
        sa.Column("created_by", sa.String(64), nullable=False, server_default=""),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("key", "version", name="uq_reply_scripts_key_version"),
    )
    op.create_table(
        "script_uses",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("ticket_id", sa.Integer, sa.ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
        sa.Column("script_key", sa.String(64), nullable=True),
        sa.Column("script_version", sa.Integer, nullable=True),
        sa.Column("category", sa.String(32), nullable=True),
        sa.Column("stage", sa.String(16), nullable=True),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False, server_default=""),
        sa.Column("at", UTCDateTime, nullable=False),
    )
    op.create_index("ix_script_uses_key", "script_uses", ["script_key"])
    op.create_table(
        "audit_log",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("actor", sa.String(64), nullable=False, server_default=""),
        sa.Column("role", sa.String(16), nullable=False, server_default=""),
        sa.Column("action", sa.String(24), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("detail", sa.Text, nullable=False, server_default=""),
        sa.Column("address", sa.String(64), nullable=False, server_default=""),
    )
    op.create_index("ix_audit_log_at", "audit_log", ["at"])
    op.create_index("ix_audit_log_subject", "audit_log", ["subject"])


def downgrade() -> None:
    """Drop what upgrade added."""
    for table in ("audit_log", "script_uses", "reply_scripts"):
        op.drop_table(table)
    with op.batch_alter_table("tickets") as batch:
        batch.drop_constraint("uq_tickets_public_token", type_="unique")
        for col in ("outcome_note", "withdrawn", "compensation", "followup_at", "nps", "public_token"):
            batch.drop_column(col)
