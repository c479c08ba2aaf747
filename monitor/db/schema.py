"""Table definitions (SQLAlchemy Core). Alembic migrations under monitor/migrations must match these."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
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
    # Handling and notification state (0003).
    Column("watches", JSON, nullable=True),
    Column("category", String(32), nullable=True),
    Column("acked_at", UTCDateTime, nullable=True),
    Column("acked_by", String(64), nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("resolved_by", String(64), nullable=True),
    Column("feedback", String(8), nullable=True),  # real | noise: the team's verdict, kept for tuning
    Column("feedback_by", String(64), nullable=True),
    Column("feedback_at", UTCDateTime, nullable=True),
    Column("notified_at", UTCDateTime, nullable=True),
    Column("notified_severity", String(8), nullable=True),
    Column("notified_posts", Integer, nullable=False, server_default="0"),
    Column("notify_seq", Integer, nullable=False, server_default="0"),
    Column("ticket_id", Integer, nullable=True),
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

# Who did what to an incident (acknowledged, resolved, marked real/noise, silenced, notified).
incident_events = Table(
    "incident_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("incident_id", Integer, ForeignKey("incidents.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False, server_default=""),
    Column("action", String(24), nullable=False),
    Column("note", Text, nullable=False, server_default=""),
    Index("ix_incident_events_incident", "incident_id", "at"),
)

# Silences added at run time (config silences live in the config). A NULL matcher matches anything.
silences = Table(
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("watch", String(64), nullable=True),
    Column("source", String(64), nullable=True),
    Column("keyword", String(128), nullable=True),
    Column("incident_id", Integer, nullable=True),
    Column("starts_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False),
    Column("comment", Text, nullable=False, server_default=""),
    Column("created_by", String(64), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
)

# The outbox: one row per (notification, channel), written in the same transaction as the change that caused it.
# ``key`` is the idempotency key (a second write of the same notification is a no-op); ``delivery_id`` is sent to
# receivers, stable across retries, so they can drop a repeat.
notifications = Table(
    "notifications", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),
    Column("delivery_id", String(36), nullable=False, unique=True),
    Column("channel", String(64), nullable=False),
    Column("kind", String(32), nullable=False),
    Column("subject", String(64), nullable=False),  # incident:12, ticket:5
    Column("severity", String(8), nullable=False),
    Column("message", JSON, nullable=False),
    Column("status", String(12), nullable=False),  # pending | sending | sent | failed | silenced
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("not_before", UTCDateTime, nullable=False),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Column("last_error", Text, nullable=True),
    Index("ix_notifications_due", "status", "next_attempt_at"),
    Index("ix_notifications_subject", "subject"),
)

# The complaint queue: one ticket per incident (and per complaint-portal item where configured).
tickets = Table(
    "tickets", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("number", String(32), nullable=False, unique=True),
    Column("state", String(16), nullable=False),
    Column("severity", String(8), nullable=False),
    Column("category", String(32), nullable=True),
    Column("tags", JSON, nullable=True),
    Column("title", Text, nullable=False, server_default=""),
    Column("complainant", String(255), nullable=False, server_default=""),  # who
    Column("platform", String(255), nullable=False, server_default=""),  # where
    Column("occurred_at", UTCDateTime, nullable=True),  # when
    Column("content", Text, nullable=False, server_default=""),
    Column("demand", Text, nullable=False, server_default=""),
    Column("evidence", JSON, nullable=True),  # links
    Column("incident_id", Integer, nullable=True),
    Column("post_uid", String(320), nullable=True, unique=True),
    Column("assignee", String(64), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("acknowledged_at", UTCDateTime, nullable=True),
    Column("responded_at", UTCDateTime, nullable=True),
    Column("verified_at", UTCDateTime, nullable=True),
    Column("resolved_at", UTCDateTime, nullable=True),
    Column("closed_at", UTCDateTime, nullable=True),
    Column("reopened", Integer, nullable=False, server_default="0"),
    Column("satisfaction", Integer, nullable=True),
    Column("followup_note", Text, nullable=True),
    Column("escalation", Integer, nullable=False, server_default="0"),
    Column("reminded", JSON, nullable=True),  # SLA milestones already reminded / escalated
    # Complaint-handling depth (0004): the complainant's progress page, follow-up, compensation and outcome.
    Column("public_token", String(64), nullable=True, unique=True),  # unguessable; NULL = no public page
    Column("nps", Integer, nullable=True),  # 0-10: would the complainant recommend us now
    Column("followup_at", UTCDateTime, nullable=True),
    Column("compensation", JSON, nullable=True),  # [{kind, amount, currency, note, at, by}]
    Column("withdrawn", Boolean, nullable=True),  # the complainant took the public complaint down
    Column("outcome_note", Text, nullable=True),
    Index("ix_tickets_state", "state"),
    Index("ix_tickets_incident", "incident_id"),
)

# Every ticket transition, assignment and note: who, when, what.
ticket_events = Table(
    "ticket_events", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False, server_default=""),
    Column("action", String(16), nullable=False),
    Column("from_state", String(16), nullable=True),
    Column("to_state", String(16), nullable=True),
    Column("note", Text, nullable=False, server_default=""),
    Column("data", JSON, nullable=True),
    Index("ix_ticket_events_ticket", "ticket_id", "at"),
)

# The reply-script library (标准话术库): one row per version of a script; the newest active version is offered.
reply_scripts = Table(
    "reply_scripts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(64), nullable=False),  # stable name across versions
    Column("version", Integer, nullable=False),
    Column("category", String(32), nullable=True),  # complaint category, NULL = any
    Column("stage", String(16), nullable=False),  # acknowledge | apology | solution | followup
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),  # with {name}, {ticket}, {deadline} ... placeholders
    Column("active", Boolean, nullable=False, server_default="1"),
    Column("created_by", String(64), nullable=False, server_default=""),
    Column("created_at", UTCDateTime, nullable=False),
    UniqueConstraint("key", "version", name="uq_reply_scripts_key_version"),
)

# What a handler actually sent to a complainant, from which script: the history that ranks suggestions.
script_uses = Table(
    "script_uses", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("ticket_id", Integer, ForeignKey("tickets.id", ondelete="CASCADE"), nullable=False),
    Column("script_key", String(64), nullable=True),  # NULL: written from scratch
    Column("script_version", Integer, nullable=True),
    Column("category", String(32), nullable=True),
    Column("stage", String(16), nullable=True),
    Column("text", Text, nullable=False),
    Column("actor", String(64), nullable=False, server_default=""),
    Column("at", UTCDateTime, nullable=False),
    Index("ix_script_uses_key", "script_key"),
)

# Who viewed, exported or deleted personal data, and what the retention job purged.
audit_log = Table(
    "audit_log", metadata,
    Column("id", BigId, primary_key=True, autoincrement=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(64), nullable=False, server_default=""),
    Column("role", String(16), nullable=False, server_default=""),
    Column("action", String(24), nullable=False),  # view | export | delete | purge | reveal
    Column("subject", String(128), nullable=False),  # ticket:5, person:<handle>, posts
    Column("detail", Text, nullable=False, server_default=""),
    Column("address", String(64), nullable=False, server_default=""),
    Index("ix_audit_log_at", "at"),
    Index("ix_audit_log_subject", "subject"),
)
