"""Request bodies and response shapes of the JSON API (they make the OpenAPI schema at /api/openapi.json).

Response models allow extra fields: the contract lets the server add fields, never rename them. Times are ISO 8601
strings with the offset of the display timezone.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class _In(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- auth ------------------------------------------------------------------------------------------------------------
class LoginIn(_In):
    """Credentials."""

    name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=1024)


class UserOut(_Out):
    """A user's name and role."""

    name: str
    role: str


class LoginOut(_Out):
    """A successful login; ``csrf`` goes in the X-CSRF-Token header of every POST/PUT/PATCH/DELETE."""

    user: UserOut
    csrf: str


class MeOut(_Out):
    """The caller (``csrf`` is null for API tokens) and the console's default language."""

    name: str
    role: str
    csrf: str | None
    language: str


class OkOut(_Out):
    """A plain acknowledgement."""

    ok: bool = True


# -- incidents -------------------------------------------------------------------------------------------------------
class IncidentSummary(_Out):
    """One incident in lists."""

    id: int
    opened_at: str
    updated_at: str
    status: str
    severity: str
    title: str
    posts: int
    authors: int
    sources: list[str]
    keywords: list[str]
    watches: list[str]
    category: str | None
    acked_by: str | None
    feedback: str | None
    ticket_id: int | None


class IncidentFull(IncidentSummary):
    """An incident with its reasons in words."""

    reasons: list[str]
    reasons_en: list[str]
    representative: str | None
    score: float


class TimelinePoint(_Out):
    """The incident's state at one signal."""

    at: str
    key: str
    severity: str
    score: float
    negatives: int
    posts: int
    authors: int
    expected: float


class IncidentPost(_Out):
    """A member post (text exactly as collected: the client must escape it)."""

    uid: str
    source: str
    author: str
    title: str
    text: str
    url: str
    published_at: str | None
    negative: float | None
    sentiment: str | None
    reposts: int | None
    comments: int | None


class IncidentEvent(_Out):
    """Who did what to the incident."""

    at: str
    actor: str
    action: str
    note: str


class NotificationOut(_Out):
    """One outbox row about the incident."""

    channel: str
    status: str
    attempts: int
    sent_at: str | None
    kind: str


class IncidentDetail(_Out):
    """Everything about one incident; ``ticket`` is the ticket's JSON (as GET /api/tickets/{id}) or null."""

    incident: IncidentFull
    timeline: list[TimelinePoint]
    posts: list[IncidentPost]
    events: list[IncidentEvent]
    notifications: list[NotificationOut]
    ticket: dict[str, Any] | None


class IncidentList(_Out):
    """Incidents, newest first."""

    items: list[IncidentSummary]


class NoteIn(_In):
    """An optional note for the incident's history."""

    note: str = Field(default="", max_length=4000)


class ResolveIn(NoteIn):
    """Resolve, optionally with the team's verdict."""

    verdict: Literal["real", "noise"] | None = None


class FeedbackIn(NoteIn):
    """The team's verdict: a real crisis or noise."""

    verdict: Literal["real", "noise"]


class SilenceFor(_In):
    """Silence for a duration ("2h", "30m", "1d") or until a time (ISO 8601 with offset)."""

    duration: str | None = Field(default=None, max_length=32)
    until: str | None = Field(default=None, max_length=64)
    comment: str = Field(default="", max_length=4000)


class SilenceIn(SilenceFor):
    """A silence of matching incidents: at least one of watch, source, keyword."""

    watch: str | None = Field(default=None, max_length=64)
    source: str | None = Field(default=None, max_length=64)
    keyword: str | None = Field(default=None, max_length=128)


class SilenceOut(_Out):
    """A silence."""

    id: int
    watch: str | None
    source: str | None
    keyword: str | None
    incident_id: int | None
    starts_at: str
    ends_at: str
    comment: str
    created_by: str
    active: bool


class SilenceList(_Out):
    """Silences, newest first."""

    items: list[SilenceOut]


# -- dashboard -------------------------------------------------------------------------------------------------------
class SeriesPoint(_Out):
    """Posts and negative posts published in the bucket starting at ``t``."""

    t: str
    posts: int
    negatives: int


class WatchSeries(_Out):
    """One watch's volume over the range (``*``: all posts, when no watches are configured)."""

    name: str
    series: list[SeriesPoint]


class SourceBrief(_Out):
    """A source's health on the dashboard."""

    name: str
    type: str
    status: str
    last_success_at: str | None
    last_error: str | None


class Dashboard(_Out):
    """The overview."""

    range: str
    incidents_by_severity: dict[str, int]
    open_incidents: list[IncidentSummary]
    watches: list[WatchSeries]
    sources: list[SourceBrief]
    outbox: dict[str, int]
    tickets: dict[str, int]


# -- tickets ---------------------------------------------------------------------------------------------------------
class TicketList(_Out):
    """Tickets, overdue first (each as GET /api/tickets/{id}, without events)."""

    items: list[dict[str, Any]]


class MoveIn(_In):
    """Move a ticket to another state (code or Chinese/English label)."""

    state: str = Field(min_length=1, max_length=32)
    note: str = Field(default="", max_length=4000)
    satisfaction: int | None = Field(default=None, ge=1, le=5)


class AssignIn(_In):
    """Give the ticket to someone."""

    assignee: str = Field(min_length=1, max_length=64)


class TextIn(_In):
    """A note, or what was replied to the complainant."""

    text: str = Field(min_length=1, max_length=8000)


# -- sources ---------------------------------------------------------------------------------------------------------
class DayCount(_Out):
    """Posts collected on one day (display timezone)."""

    date: str
    posts: int


class SourceOut(_Out):
    """A configured source with its health."""

    name: str
    type: str
    status: str
    enabled: bool
    last_run_at: str | None
    last_success_at: str | None
    last_failure_at: str | None
    consecutive_failures: int
    last_error: str | None
    posts_total: int
    posts_per_day: list[DayCount]


class SourceList(_Out):
    """Every configured source."""

    items: list[SourceOut]


class TestPost(_Out):
    """A post as the test read it."""

    title: str
    text: str
    author: str
    url: str
    published_at: str | None


class SourceTestOut(_Out):
    """One fetch and parse of a source, nothing stored."""

    ok: bool
    posts: list[TestPost]
    problems: list[str]
    error: str | None
