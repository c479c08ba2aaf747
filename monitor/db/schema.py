"""Table definitions (SQLAlchemy Core). Alembic migrations under monitor/migrations must match these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator

metadata = MetaData(naming_convention={
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
})


class UTCDateTime(TypeDecorator[datetime]):
    """Stores naive UTC, returns aware UTC, on every backend (SQLite has no timezone type)."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the database; monitor stores aware UTC times only")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a 64-bit key.
BigId = BigInteger().with_variant(Integer(), "sqlite")

sources = Table(
    "sources", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(64), nullable=False, unique=True),
    Column("type", String(32), nullable=False),
    Column("config_digest", String(32), nullable=False, server_default=""),
    Column("cursor", JSON, nullable=True),
    Column("status", String(16), nullable=False, server_default="new"),
    Column("last_run_at", UTCDateTime, nullable=True),
    Column("last_success_at", UTCDateTime, nullable=True),
    Column("last_failure_at", UTCDateTime, nullable=True),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", UTCDateTime, nullable=True),
    Column("posts_total", BigInteger, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("removed_at", UTCDateTime, nullable=True),
)

posts = Table(
    "posts", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("native_id", String(255), nullable=False),
    Column("url", Text, nullable=False, server_default=""),
    Column("title", Text, nullable=False, server_default=""),
    Column("text", Text, nullable=False, server_default=""),
    Column("author", String(255), nullable=False, server_default=""),
    Column("author_id", String(255), nullable=False, server_default=""),
    Column("published_at", UTCDateTime, nullable=False),
    Column("fetched_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=True),
    Column("reposts", Integer, nullable=True),
    Column("comments", Integer, nullable=True),
    Column("likes", Integer, nullable=True),
    Column("content_hash", String(64), nullable=False),
    Column("extra", JSON, nullable=True),
    # Analysis (0002): filled right after the post is stored; NULL analysed_at = not analysed yet (after a crash).
    Column("negative", Float, nullable=True),
    Column("sentiment", String(8), nullable=True),
    Column("watches", JSON, nullable=True),
    Column("topic", String(32), nullable=True),
    Column("dup_of", String(320), nullable=True),
    Column("category", String(32), nullable=True),
    Column("cues", JSON, nullable=True),
    Column("analysed_at", UTCDateTime, nullable=True),
    UniqueConstraint("source_id", "native_id", name="uq_posts_source_native"),
    Index("ix_posts_published_at", "published_at"),
    Index("ix_posts_fetched_at", "fetched_at"),
    Index("ix_posts_content_hash", "content_hash"),
    Index("ix_posts_analysed_at", "analysed_at"),
)

source_runs = Table(
    "source_runs", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("source_id", Integer, ForeignKey("sources.id", ondelete="CASCADE"), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("finished_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False),
    Column("pages", Integer, nullable=False, server_default="0"),
    Column("new_posts", Integer, nullable=False, server_default="0"),
    Column("updated_posts", Integer, nullable=False, server_default="0"),
    Column("error", Text, nullable=True),
    Index("ix_source_runs_source_started", "source_id", "started_at"),
)

incidents = Table(
    "incidents", metadata,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("opened_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("status", String(16), nullable=False, server_default="open"),
    Column("severity", String(8), nullable=False),
    Column("score", Float, nullable=False),
    Column("title", Text, nullable=False, server_default=""),
    Column("keys", JSON, nullable=False),
    Column("keywords", JSON, nullable=True),
    Column("sources", JSON, nullable=True),
    Column("authors", Integer, nullable=False, server_default="0"),
    Column("posts", Integer, nullable=False, server_default="0"),
    Column("reasons", JSON, nullable=True),
    Column("representative", String(320), nullable=True),
    Index("ix_incidents_status", "status"),
)

incident_posts = Table(
    "incident_posts", metadata,
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), primary_key=True),
    Column("post_uid", String(320), primary_key=True),
    Column("author", String(255), nullable=False, server_default=""),
    Column("source", String(64), nullable=False, server_default=""),
    Column("added_at", UTCDateTime, nullable=False),
)

# The incident's timeline: one point per signal (volume, severity, score at that moment).
incident_points = Table(
    "incident_points", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("key", String(128), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("score", Float, nullable=False),
    Column("negatives", Integer, nullable=False),
    Column("authors", Integer, nullable=False),
    Column("posts", Integer, nullable=False),
    Column("expected", Float, nullable=False),
    Index("ix_incident_points_incident_at", "incident_id", "at"),
)
