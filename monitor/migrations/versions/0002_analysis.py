"""Analysis columns on posts; incidents with their posts and timeline.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-23
"""

import sqlalchemy as sa
from alembic import op

from monitor.db.schema import BigId, UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add the analysis columns and the incident tables."""
    with op.batch_alter_table("posts") as batch:
        batch.add_column(sa.Column("negative", sa.Float, nullable=True))
        batch.add_column(sa.Column("sentiment", sa.String(8), nullable=True))
        batch.add_column(sa.Column("watches", sa.JSON, nullable=True))
        batch.add_column(sa.Column("topic", sa.String(32), nullable=True))
        batch.add_column(sa.Column("dup_of", sa.String(320), nullable=True))
        batch.add_column(sa.Column("category", sa.String(32), nullable=True))
        batch.add_column(sa.Column("cues", sa.JSON, nullable=True))
        batch.add_column(sa.Column("analysed_at", UTCDateTime, nullable=True))
        batch.create_index("ix_posts_analysed_at", ["analysed_at"])
    op.create_table(
        "incidents",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("opened_at", UTCDateTime, nullable=False),
        sa.Column("updated_at", UTCDateTime, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, server_default="open"),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("title", sa.Text, nullable=False, server_default=""),
        sa.Column("keys", sa.JSON, nullable=False),
        sa.Column("keywords", sa.JSON, nullable=True),
        sa.Column("sources", sa.JSON, nullable=True),
        sa.Column("authors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("posts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("reasons", sa.JSON, nullable=True),
        sa.Column("representative", sa.String(320), nullable=True),
    )
    op.create_index("ix_incidents_status", "incidents", ["status"])
    op.create_table(
        "incident_posts",
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("post_uid", sa.String(320), primary_key=True),
        sa.Column("author", sa.String(255), nullable=False, server_default=""),
        sa.Column("source", sa.String(64), nullable=False, server_default=""),
        sa.Column("added_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "incident_points",
        sa.Column("id", BigId, primary_key=True, autoincrement=True),
        sa.Column("incident_id", sa.Integer, sa.ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("key", sa.String(128), nullable=False),
        sa.Column("severity", sa.String(8), nullable=False),
        sa.Column("score", sa.Float, nullable=False),
        sa.Column("negatives", sa.Integer, nullable=False),
        sa.Column("authors", sa.Integer, nullable=False),
        sa.Column("posts", sa.Integer, nullable=False),
        sa.Column("expected", sa.Float, nullable=False),
    )
    op.create_index("ix_incident_points_incident_at", "incident_points", ["incident_id", "at"])


def downgrade() -> None:
    """Drop what upgrade added."""
    op.drop_table("incident_points")
    op.drop_table("incident_posts")
    op.drop_table("incidents")
    with op.batch_alter_table("posts") as batch:
        batch.drop_index("ix_posts_analysed_at")
        for col in ("analysed_at", "cues", "category", "dup_of", "topic", "watches", "sentiment", "negative"):
            batch.drop_column(col)
