"""The complaint queue: tickets registered from incidents and complaint-portal items, moved through their lifecycle
by the team, chased by SLA reminders and escalations.

Registration (``open_for_incident``, ``open_for_post``, ``open_for_posts``, ``on_incident_flare``,
``handle_change``) runs in the CALLER'S transaction (the analysis stage's), so an incident and its ticket commit
together. Every team action (``move``, ``assign``, ``note``, ``respond``, ``followup``, ``reopen``,
``acknowledge``) and every SLA check is one transaction of its own, writing a ``ticket_events`` row and, where
something must be sent, outbox rows (:func:`alerts.outbox.enqueue`) in that same transaction. The lifecycle rules
and SLA arithmetic live in the pure :mod:`alerts.tickets`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, func, or_, select, update
from sqlalchemy.engine import Connection

from alerts import tickets as tk
from alerts.message import SEVERITY_ZH, Message
from alerts.notify import quiet_until
from alerts.outbox import enqueue
from alerts.profiles import graded_severity, reach_note
from alerts.registration import (
    Registration,
    demand_from,
    incident_info,
    post_item,
    register_incident,
    unique,
)
from alerts.routing import route
from monitor.analysis.surge import SEVERITIES
from monitor.clock import Clock, SystemClock
from monitor.crypto import cipher_for
from monitor.db.schema import incidents, ticket_events
from monitor.db.schema import tickets as tickets_t
from monitor.normalize import followers_of

if TYPE_CHECKING:
    from alerts.incidents import Change, Incident
    from monitor.analysis.pipeline import Annotation
    from monitor.config import Config
    from monitor.normalize import Post

#: The outbox channel name the delivery side maps to ``queue.external`` (a signed JSON POST).
EXTERNAL_CHANNEL = "@external"
#: Actors that are the system itself: their actions do not count as a handler acknowledging a ticket.
SYSTEM_ACTORS = frozenset({"", "system", "sla", "monitor"})
#: Severity of a ticket opened from a single complaint-portal item (an incident brings its own).
PORTAL_SEVERITY = "blue"
#: A flare reopens a ticket whose incident shares a topic key or at least this share of keywords.
FLARE_KEYWORD_SHARE = 0.5


@dataclass(frozen=True)
class TicketEvent:
    """One row of a ticket's history."""

    id: int
    at: datetime
    actor: str
    action: str  # create | ack | assign | move | reopen | note | respond | followup | severity | remind | escalate
    from_state: str | None
    to_state: str | None
    note: str
    data: dict[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (times as ISO 8601 UTC)."""
        out = asdict(self)
        out["at"] = self.at.isoformat()
        return out


@dataclass(frozen=True)
class Ticket:
    """A ticket as read back, with its SLA status at the moment of reading (and its events, from ``get``)."""

    id: int
    number: str
    state: str
    severity: str
    category: str | None
    tags: tuple[str, ...]
    title: str
    complainant: str
    platform: str
    occurred_at: datetime | None
    content: str
    demand: str
    evidence: tuple[str, ...]
    incident_id: int | None
    post_uid: str | None
    assignee: str | None
    created_at: datetime
    updated_at: datetime
    acknowledged_at: datetime | None
    responded_at: datetime | None
    verified_at: datetime | None
    resolved_at: datetime | None
    closed_at: datetime | None
    reopened: int
    satisfaction: int | None
    followup_note: str | None
    escalation: int
    reminded: dict[str, Any]
    milestones: tuple[tk.MilestoneStatus, ...]
    events: tuple[TicketEvent, ...] = ()

    @property
    def overdue(self) -> list[tk.MilestoneStatus]:
        """Milestones of an open ticket that are unmet and past their deadline."""
        if self.state not in tk.OPEN_STATES:
            return []
        return [m for m in self.milestones if m.met_at is None and m.overdue_by > timedelta(0)]

    @property
    def overdue_by(self) -> timedelta:
        """The longest lapse among the overdue milestones (zero when none)."""
        return max((m.overdue_by for m in self.overdue), default=timedelta(0))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict: every column, SLA status per milestone, and events (times ISO 8601 UTC)."""
        out: dict[str, Any] = {}
        for name in ("id", "number", "state", "severity", "category", "title", "complainant", "platform",
                     "content", "demand", "incident_id", "post_uid", "assignee", "reopened", "satisfaction",
                     "followup_note", "escalation", "reminded"):
            out[name] = getattr(self, name)
        out["state_label"] = tk.STATE_LABELS[self.state][0] if self.state in tk.STATE_LABELS else self.state
        out["tags"], out["evidence"] = list(self.tags), list(self.evidence)
        for name in ("occurred_at", "created_at", "updated_at", "acknowledged_at", "responded_at", "verified_at",
                     "resolved_at", "closed_at"):
            value = getattr(self, name)
            out[name] = value.isoformat() if value else None
        out["sla"] = {m.milestone: {"deadline": m.deadline.isoformat(),
                                    "met_at": m.met_at.isoformat() if m.met_at else None,
                                    "overdue_seconds": int(m.overdue_by.total_seconds()), "waived": m.waived}
                      for m in self.milestones}
        out["events"] = [e.to_json() for e in self.events]
        return out


class TicketQueue:
    """The complaint queue over one engine and config; ``clock`` gives ``now`` where the caller does not."""

    def __init__(self, engine: Engine, config: Config, clock: Clock | None = None) -> None:
        self.engine = engine
        self.config = config
        self.clock: Clock = clock or SystemClock()

    # -- registration (caller's transaction) ---------------------------------------------------------------------
    def open_for_incident(self, conn: Connection, incident: Incident | Any, now: datetime) -> int | None:
        """Open the ticket of an incident at or above ``queue.min_severity``; returns its id (None: no ticket).

        Idempotent: an incident already holding a ticket gets that ticket back, its severity raised if the incident
        escalated. Call inside the transaction that stores the incident (the incident row must exist).
        """
        q = self.config.queue
        info = incident_info(conn, incident)
        existing = self._incident_ticket(conn, info.id)
        if existing is not None:
            self._raise_severity(conn, existing, info.severity, now)
            return existing
        if not q.enabled or SEVERITIES.index(info.severity) < SEVERITIES.index(q.min_severity):
            return None
        reg = register_incident(conn, info)
        ticket_id = self._create(conn, reg, now)
        conn.execute(update(incidents).where(incidents.c.id == info.id).values(ticket_id=ticket_id))
        return ticket_id

    def open_for_post(self, conn: Connection, post: Any, now: datetime, *, watches: Sequence[str] | None = None,
                      category: str | None = None) -> int | None:
        """Open the ticket of one complaint-portal item about a watched brand; returns its id (None: not one).

        ``post`` is a posts row (with ``source_name``/``source`` or ``source_id``), a mapping of its columns, or a
        :class:`~monitor.normalize.Post` with ``watches``/``category`` from its annotation. One ticket per post:
        an item already ticketed gets its ticket back.
        """
        item = post_item(conn, post, watches, category)
        if item is None or not self._portal_match(item["source"], item["watches"]):
            return None
        existing = conn.execute(select(tickets_t.c.id).where(tickets_t.c.post_uid == item["uid"])).scalar()
        if existing is not None:
            return int(existing)
        extra = item["extra"]
        text = " ".join(x for x in (item["title"], item["text"]) if x and x not in item["text"]) or item["text"]
        tags = unique([str(extra[k]) for k in ("merchant", "issue") if extra.get(k)] + list(item["watches"]))
        # A complaint from an author with a large following is a bigger risk: graded up (alerts/profiles.py).
        followers = followers_of(extra)
        severity = graded_severity(PORTAL_SEVERITY, followers)
        reg = Registration(
            title=(item["title"] or item["text"])[:120], severity=severity, category=item["category"],
            tags=tags, complainant=(item["author"] or "")[:255], platform=item["source"][:255],
            occurred_at=item["published_at"], content=text, demand=str(extra.get("demand") or "").strip()
            or demand_from([text]), evidence=[item["url"]] if item["url"] else [], post_uid=item["uid"])
        ticket_id = self._create(conn, reg, now)
        if severity != PORTAL_SEVERITY and followers is not None:
            self._event(conn, ticket_id, now, "system", "note", None, None,
                        reach_note(followers, PORTAL_SEVERITY, severity), {"followers": followers})
        return ticket_id

    def open_for_posts(self, conn: Connection, new_posts: Sequence[Post], notes: Sequence[Annotation],
                       now: datetime) -> list[int]:
        """Open the tickets of a poll's complaint-portal items (posts with their annotations, paired by uid)."""
        q = self.config.queue
        if not q.enabled or not q.portal.sources:
            return []
        by_uid = {n.uid: n for n in notes}
        opened = []
        for p in new_posts:
            if p.source not in q.portal.sources:
                continue
            note = by_uid.get(p.uid)
            got = self.open_for_post(conn, p, now, watches=note.watches if note else (),
                                     category=note.category if note else None)
            if got is not None:
                opened.append(got)
        return opened

    def on_incident_flare(self, conn: Connection, incident: int | Incident | Any, now: datetime, *,
                          keys: Sequence[str] | None = None, keywords: Sequence[str] | None = None) -> list[int]:
        """Reopen the ticket a new or escalated incident flares up again; returns the reopened ticket ids.

        A ticket in 回访, or closed within ``queue.reopen_within``, whose incidents share a topic key or at least
        half of their keywords (of the smaller set) with this incident goes back to 处理 with an event saying why,
        and the incident is linked to it. At most one ticket is reopened per flare (the best match).
        """
        if isinstance(incident, int):
            row = conn.execute(select(incidents).where(incidents.c.id == incident)).first()
            info_keys = list(keys if keys is not None else (row._mapping["keys"] if row else []))
            info_words = list(keywords if keywords is not None else ((row.keywords or []) if row else []))
            inc_id, title, own = incident, (row.title if row else ""), (row.ticket_id if row else None)
        else:
            info = incident_info(conn, incident, with_posts=False)
            info_keys, info_words = list(keys or info.keys), list(keywords or info.keywords)
            inc_id, title = info.id, info.title
            own = conn.execute(select(incidents.c.ticket_id).where(incidents.c.id == inc_id)).scalar()
        cutoff = now - timedelta(seconds=self.config.queue.reopen_within)
        query = select(tickets_t).where(or_(tickets_t.c.state == tk.FOLLOW_UP,
                                            (tickets_t.c.state == tk.CLOSED) & (tickets_t.c.closed_at >= cutoff)))
        if own is not None:  # an incident with its own ticket flares only that ticket
            query = query.where(tickets_t.c.id == own)
        best: tuple[float, datetime, Any, str] | None = None
        for t in conn.execute(query).all():
            linked = conn.execute(select(
                incidents.c.id, incidents.c["keys"].label("topic_keys"), incidents.c.keywords).where(
                or_(incidents.c.ticket_id == t.id, incidents.c.id == (t.incident_id or -1)))).all()
            for other in linked:
                if other.id == inc_id:  # the very incident of a resolved ticket surging again
                    score, why = 3.0, "同一事件再次升温"
                else:
                    score, why = _overlap(info_keys, info_words, list(other.topic_keys or []),
                                          list(other.keywords or []))
                if score and (best is None or (score, t.updated_at) > (best[0], best[1])):
                    best = (score, t.updated_at, t, why)
        if best is None:
            return []
        _, _, t, why = best
        note = f"相关舆情再次升温：事件 #{inc_id}「{title}」，{why} / incident #{inc_id} flared up"
        self._move_row(conn, t, tk.HANDLING, actor="system", note=note, satisfaction=None, now=now,
                       data={"incident_id": inc_id, "reason": why})
        conn.execute(update(incidents).where(incidents.c.id == inc_id, incidents.c.ticket_id.is_(None))
                     .values(ticket_id=t.id))
        return [int(t.id)]

    def handle_change(self, conn: Connection, change: Change, now: datetime) -> int | None:
        """The one call for the analysis stage per incident change: a new, escalated or reopened incident first
        reopens a matching resolved ticket (a flare), else opens (or raises the severity of) its own. Returns the
        ticket id."""
        if not (change.opened or change.escalated or change.reopened):
            return None
        reopened = self.on_incident_flare(conn, change.incident, now)
        if reopened:
            return reopened[0]
        return self.open_for_incident(conn, change.incident, now)

    # -- team actions (one transaction each) ---------------------------------------------------------------------
    def move(self, ref: int | str, target: str, *, actor: str, note: str = "", satisfaction: int | None = None,
             now: datetime | None = None) -> Ticket:
        """Move a ticket to ``target`` (a code or a Chinese/English label) under the transition table."""
        state = target if target in tk.STATES else tk.parse_state(target)
        now = now or self.clock.now()
        with self.engine.begin() as conn:
            row = self._row(conn, ref, lock=True)
            self._move_row(conn, row, state, actor=actor, note=note, satisfaction=satisfaction, now=now)
        return self._get_or_fail(ref, now)

    def reopen(self, ref: int | str, *, actor: str, note: str, now: datetime | None = None) -> Ticket:
        """Put a ticket in 回访 or 关闭 back to 处理 (the resolve clock starts again)."""
        now = now or self.clock.now()
        with self.engine.begin() as conn:
            row = self._row(conn, ref, lock=True)
            if row.state not in (tk.FOLLOW_UP, tk.CLOSED):
                raise tk.TicketError(f"只有「回访」或「关闭」的工单可以重新打开，{row.number} 处于「"
                                     f"{tk.STATE_LABELS[row.state][0]}」/ only tickets in follow_up or closed can be "
                                     f"reopened; {row.number} is {row.state}")
            self._move_row(conn, row, tk.HANDLING, actor=actor, note=note, satisfaction=None, now=now)
        return self._get_or_fail(ref, now)

    def followup(self, ref: int | str, satisfaction: int, *, actor: str, note: str = "", close: bool = True,
                 now: datetime | None = None) -> Ticket:
        """Record the follow-up visit (回访): satisfaction 1-5 and a note; with ``close`` the ticket is closed."""
        tk.check_satisfaction(satisfaction)
        now = now or self.clock.now()
        with self.engine.begin() as conn:
            row = self._row(conn, ref, lock=True)
            if close:
                self._move_row(conn, row, tk.CLOSED, actor=actor, note=note, satisfaction=satisfaction, now=now)
            else:
                if row.state != tk.FOLLOW_UP:
                    raise tk.TicketError(f"回访记录只能在「回访」状态填写，{row.number} 处于"
                                         f"「{tk.STATE_LABELS[row.state][0]}」 / a follow-up is recorded in follow_up; "
                                         f"{row.number} is {row.state}")
                conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(
                    satisfaction=satisfaction, followup_note=note, updated_at=now))
                self._event(conn, row.id, now, actor, "followup", row.state, row.state, note,
                            {"satisfaction": satisfaction})
        return self._get_or_fail(ref, now)

    def assign(self, ref: int | str, who: str, *, actor: str, now: datetime | None = None) -> Ticket:
        """Give the ticket to ``who`` (counts as acknowledging it)."""
        if not who.strip():
            raise tk.TicketError("负责人不能为空 / give the name of the person to assign")
        now = now or self.clock.now()
        with self.engine.begin() as conn:
            row = self._row(conn, ref, lock=True)
            values: dict[str, Any] = {"assignee": who.strip()[:64], "updated_at": now}
            self._acknowledge_values(row, actor, now, values)
            conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(**values))
            self._event(conn, row.id, now, actor, "assign", None, None, "",
                        {"assignee": who.strip(), "previous": row.assignee})
        return self._get_or_fail(ref, now)

    def acknowledge(self, ref: int | str, *, actor: str, now: datetime | None = None) -> Ticket:
        """A handler takes note of the ticket (受理); nothing happens if it is acknowledged already."""
        now = now or self.clock.now()
        with self.engine.begin() as conn:
            row = self._row(conn, ref, lock=True)
            values: dict[str, Any] = {"updated_at": now}
            if row.acknowledged_at is None and self._acknowledge_values(row, actor, now, values):
                conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(**values))
                self._event(conn, row.id, now, actor, "ack", None, None, "", None)
        return self._get_or_fail(ref, now)

    def note(self, ref: int | str, text: str, *, actor: str, now: datetime | None = None) -> Ticket:
        """Add a note to the ticket's history (does not count as acknowledging it)."""
        if not text.strip():
            raise tk.TicketError("备注不能为空 / the note is empty")
        now = now or self.clock.now()
        with self.engine.begin() as conn:
            row = self._row(conn, ref, lock=True)
            conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(updated_at=now))
            self._event(conn, row.id, now, actor, "note", None, None, text.strip(), None)
        return self._get_or_fail(ref, now)

    def respond(self, ref: int | str, text: str, *, actor: str, now: datetime | None = None) -> Ticket:
        """Record a reply to the complainant; the first one meets the respond milestone (and acknowledges)."""
        if not text.strip():
            raise tk.TicketError("回复内容不能为空 / write what was replied to the complainant")
        now = now or self.clock.now()
        with self.engine.begin() as conn:
            row = self._row(conn, ref, lock=True)
            values: dict[str, Any] = {"updated_at": now}
            if row.responded_at is None:
                values["responded_at"] = now
            self._acknowledge_values(row, actor, now, values)
            conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(**values))
            self._event(conn, row.id, now, actor, "respond", None, None, text.strip(), None)
        return self._get_or_fail(ref, now)

    # -- SLA -------------------------------------------------------------------------------------------------------
    def check_sla(self, now: datetime | None = None) -> int:
        """Write the reminders and escalations due at ``now`` to the outbox; returns how many were written.

        One transaction per ticket with something due: the outbox rows, the ``reminded`` marks, the events and the
        escalation count commit together, so a crash neither loses nor repeats a reminder.
        """
        now = now or self.clock.now()
        q = self.config.queue
        if not q.enabled:
            return 0
        with self.engine.connect() as conn:
            rows = conn.execute(select(tickets_t).where(tickets_t.c.state.in_(tk.OPEN_STATES))).all()
            restart = resolve_restarts(conn, [r.id for r in rows])
        written = 0
        for row in rows:
            if not tk.due_alerts(ticket_times(row, restart.get(row.id)), q.policy(row.severity), now, q.escalate_after):
                continue
            with self.engine.begin() as conn:
                fresh = self._row(conn, row.id, lock=True)  # a handler may have acted since the first read
                times = ticket_times(fresh, resolve_restarts(conn, [fresh.id]).get(fresh.id))
                due = tk.due_alerts(times, q.policy(fresh.severity), now, q.escalate_after)
                for alert in due:
                    self._send_alert(conn, fresh, alert, now)
                if due:
                    escalations = sum(1 for a in due if a.kind == tk.ESCALATE)
                    conn.execute(update(tickets_t).where(tickets_t.c.id == fresh.id).values(
                        reminded=tk.marks_for(due, fresh.reminded or {}, now),
                        escalation=tickets_t.c.escalation + escalations))
                written += len(due)
        return written

    # -- queries ---------------------------------------------------------------------------------------------------
    def get(self, ref: int | str, now: datetime | None = None) -> Ticket | None:
        """A ticket by id or number (``T20261123-0001``), with its events; None if there is none."""
        now = now or self.clock.now()
        with self.engine.connect() as conn:
            row = self._find(conn, ref)
            if row is None:
                return None
            events = tuple(_event(e) for e in conn.execute(
                select(ticket_events).where(ticket_events.c.ticket_id == row.id)
                .order_by(ticket_events.c.at, ticket_events.c.id)))
            restart = resolve_restarts(conn, [row.id])
        return self._ticket(row, restart.get(row.id), now, events)

    def list_tickets(self, *, states: Sequence[str] | None = None, severity: str | None = None,
             assignee: str | None = None, overdue_only: bool = False, limit: int = 200,
             now: datetime | None = None) -> list[Ticket]:
        """Tickets: overdue ones first; then by severity (red first), longest lapse, oldest.

        ``states`` None means every state but 关闭; ``assignee`` ``-`` means unassigned.
        """
        now = now or self.clock.now()
        query = select(tickets_t)
        if states is None:
            query = query.where(tickets_t.c.state != tk.CLOSED)
        else:
            query = query.where(tickets_t.c.state.in_(list(states)))
        if severity:
            query = query.where(tickets_t.c.severity == severity)
        if assignee == "-":
            query = query.where(tickets_t.c.assignee.is_(None))
        elif assignee:
            query = query.where(tickets_t.c.assignee == assignee)
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
            restart = resolve_restarts(conn, [r.id for r in rows])
        found = [self._ticket(r, restart.get(r.id), now) for r in rows]
        if overdue_only:
            found = [t for t in found if t.overdue]
        rank = {s: i for i, s in enumerate(SEVERITIES)}
        found.sort(key=lambda t: (not t.overdue, -rank.get(t.severity, 0), -t.overdue_by.total_seconds(),
                                  t.created_at, t.id))
        return found[:limit]

    # -- internals -------------------------------------------------------------------------------------------------
    def _ticket(self, row: Any, resolve_from: datetime | None, now: datetime,
                events: tuple[TicketEvent, ...] = ()) -> Ticket:
        times = ticket_times(row, resolve_from)
        personal = cipher_for(self.config).decrypt_ticket(row)  # Ticket fields are always plaintext
        return Ticket(
            row.id, row.number, row.state, row.severity, row.category, tuple(row.tags or ()), row.title,
            personal["complainant"], row.platform, row.occurred_at, personal["content"], personal["demand"],
            tuple(personal["evidence"] or ()),
            row.incident_id, row.post_uid, row.assignee, row.created_at, row.updated_at, row.acknowledged_at,
            row.responded_at, row.verified_at, row.resolved_at, row.closed_at, row.reopened, row.satisfaction,
            row.followup_note, row.escalation, dict(row.reminded or {}),
            tk.status(times, self.config.queue.policy(row.severity), now), events)

    def _get_or_fail(self, ref: int | str, now: datetime) -> Ticket:
        got = self.get(ref, now)
        if got is None:  # deleted between the write and the read: not expected, but say so
            raise tk.TicketError(f"ticket {ref} vanished")
        return got

    def _find(self, conn: Connection, ref: int | str, lock: bool = False) -> Any:
        text = str(ref).strip()
        if text.isdigit():
            query = select(tickets_t).where(tickets_t.c.id == int(text))
        else:
            query = select(tickets_t).where(tickets_t.c.number == text.upper())
        if lock:
            query = query.with_for_update()  # PostgreSQL: two handlers moving one ticket queue up; SQLite ignores it
        return conn.execute(query).first()

    def _row(self, conn: Connection, ref: int | str, lock: bool = False) -> Any:
        row = self._find(conn, ref, lock)
        if row is None:
            raise tk.TicketError(f"没有工单 {ref} / no ticket {ref}; see `monitor tickets list --all`")
        return row

    def _acknowledge_values(self, row: Any, actor: str, now: datetime, values: dict[str, Any]) -> bool:
        if row.acknowledged_at is None and actor not in SYSTEM_ACTORS:
            values["acknowledged_at"] = now
            return True
        return False

    def _move_row(self, conn: Connection, row: Any, target: str, *, actor: str, note: str,
                  satisfaction: int | None, now: datetime, data: dict[str, Any] | None = None) -> None:
        rule = tk.check_move(row.state, target, note=note, satisfaction=satisfaction)
        values: dict[str, Any] = {"state": target, "updated_at": now}
        self._acknowledge_values(row, actor, now, values)
        if row.state == tk.VERIFYING and target in (tk.HANDLING, tk.CLOSED) and row.verified_at is None:
            values["verified_at"] = now  # verification concluded (founded or not)
        if target == tk.FOLLOW_UP:
            values["resolved_at"] = now
            if row.responded_at is None:  # giving the solution is a reply to the complainant
                values["responded_at"] = now
        if target == tk.CLOSED:
            values["closed_at"] = now
            if satisfaction is not None:
                values.update(satisfaction=satisfaction, followup_note=note or None)
        if rule.reopen:
            # Back to work after a solution: the old solution and its satisfaction no longer stand (the events keep
            # them), the resolve clock restarts now and may remind again.
            values.update(resolved_at=None, closed_at=None, satisfaction=None, followup_note=None,
                          reopened=row.reopened + 1, reminded=tk.clear_resolve_marks(row.reminded))
        conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(**values))
        extra = dict(data or {})
        if satisfaction is not None:
            extra["satisfaction"] = satisfaction
        if rule.reopen and row.satisfaction is not None:
            extra["previous_satisfaction"] = row.satisfaction
        self._event(conn, row.id, now, actor, "reopen" if rule.reopen else "move", row.state, target, note,
                    extra or None)

    def _event(self, conn: Connection, ticket_id: int, now: datetime, actor: str, action: str,
               from_state: str | None, to_state: str | None, note: str, data: dict[str, Any] | None) -> int:
        event_id = int(conn.execute(ticket_events.insert().values(
            ticket_id=ticket_id, at=now, actor=actor[:64], action=action, from_state=from_state, to_state=to_state,
            note=note, data=data).returning(ticket_events.c.id)).scalar_one())
        self._sync(conn, ticket_id, event_id, now)
        return event_id

    def _sync(self, conn: Connection, ticket_id: int, event_id: int, now: datetime) -> None:
        """Mirror the ticket to the external ticketing system, once per event (the key names the event)."""
        if self.config.queue.external is None:
            return
        row = conn.execute(select(tickets_t).where(tickets_t.c.id == ticket_id)).one()
        last = conn.execute(select(ticket_events).where(ticket_events.c.id == event_id)).one()
        data = self._ticket(row, resolve_restarts(conn, [ticket_id]).get(ticket_id), now).to_json()
        data.pop("events")
        data["last_event"] = _event(last).to_json()
        data["link"] = self._link(ticket_id)
        message = Message(kind="ticket.sync", severity=row.severity, title=f"{row.number} {row.title}"[:200],
                          summary=f"{last.action}: {last.from_state or ''}->{last.to_state or ''}".strip(),
                          link=self._link(ticket_id), data=data)
        enqueue(conn, key=f"ticket:{ticket_id}:sync:{event_id}", channels=[EXTERNAL_CHANNEL], message=message,
                subject=f"ticket:{ticket_id}", now=now)

    def _link(self, ticket_id: int) -> str:
        return f"{self.config.alerts.console_url.rstrip('/')}/tickets/{ticket_id}"

    def _create(self, conn: Connection, reg: Registration, now: datetime) -> int:
        number = self._next_number(conn, now)
        # Personal fields are encrypted at rest when a data key is set (monitor/crypto.py); readers decrypt.
        personal = cipher_for(self.config).encrypt_ticket(
            {"complainant": reg.complainant[:255], "content": reg.content, "demand": reg.demand,
             "evidence": reg.evidence or None})
        ticket_id = int(conn.execute(tickets_t.insert().values(
            number=number, state=tk.ACCEPTED, severity=reg.severity, category=reg.category, tags=reg.tags or None,
            title=reg.title, platform=reg.platform[:255], occurred_at=reg.occurred_at,
            incident_id=reg.incident_id, post_uid=reg.post_uid,
            created_at=now, updated_at=now, reopened=0, escalation=0, reminded={}, **personal,
        ).returning(tickets_t.c.id)).scalar_one())
        source = f"incident #{reg.incident_id}" if reg.incident_id is not None else f"post {reg.post_uid}"
        self._event(conn, ticket_id, now, "system", "create", None, tk.ACCEPTED, f"登记自 {source}",
                    {"incident_id": reg.incident_id, "post_uid": reg.post_uid})
        return ticket_id

    def _next_number(self, conn: Connection, now: datetime) -> str:
        # Numbers follow the team's calendar day; the daemon is the only writer of new tickets, so max + 1 is safe.
        prefix = f"T{now.astimezone(self.config.tz):%Y%m%d}-"
        last = conn.execute(select(func.max(tickets_t.c.number)).where(tickets_t.c.number.like(prefix + "%"))).scalar()
        seq = int(str(last).rsplit("-", 1)[1]) + 1 if last else 1
        return f"{prefix}{seq:04d}"

    def _incident_ticket(self, conn: Connection, incident_id: int) -> int | None:
        got = conn.execute(select(incidents.c.ticket_id).where(incidents.c.id == incident_id)).scalar()
        if got is None:
            got = conn.execute(select(tickets_t.c.id).where(tickets_t.c.incident_id == incident_id)
                               .order_by(tickets_t.c.id)).scalar()
        return int(got) if got is not None else None

    def _raise_severity(self, conn: Connection, ticket_id: int, severity: str, now: datetime) -> None:
        row = conn.execute(select(tickets_t.c.severity, tickets_t.c.state).where(tickets_t.c.id == ticket_id)).first()
        if row is None or SEVERITIES.index(severity) <= SEVERITIES.index(row.severity):
            return
        conn.execute(update(tickets_t).where(tickets_t.c.id == ticket_id).values(severity=severity, updated_at=now))
        self._event(conn, ticket_id, now, "system", "severity", None, None,
                    f"事件升级：{SEVERITY_ZH.get(row.severity)} → {SEVERITY_ZH.get(severity)}",
                    {"from": row.severity, "to": severity})

    def _portal_match(self, source: str, watches: Sequence[str]) -> bool:
        portal = self.config.queue.portal
        if not self.config.queue.enabled or source not in portal.sources:
            return False
        if portal.watches:
            return bool(set(portal.watches) & set(watches))
        # "About a watched brand": any watch matched; with no watches configured the portal's own search is the
        # brand filter, so every item counts.
        return bool(watches) or not self.config.watches

    def _channels(self, row: Any, kind: str) -> list[str]:
        q = self.config.queue
        enabled = [c.name for c in self.config.channels if c.enabled]
        chosen = q.escalate_channels if kind == tk.ESCALATE and q.escalate_channels is not None else None
        if chosen is None:
            chosen = q.remind_channels
        if chosen is not None:
            return [c for c in chosen if c in set(enabled)]
        watch_names = {w.name for w in self.config.watches}
        return route(self.config.alerts, enabled, watches=[t for t in (row.tags or []) if t in watch_names],
                     sources=[s.strip() for s in row.platform.split(",") if s.strip()], category=row.category,
                     severity=row.severity)

    def _send_alert(self, conn: Connection, row: Any, alert: tk.DueAlert, now: datetime) -> None:
        limit = float(getattr(self.config.queue.policy(row.severity), alert.milestone))
        name = tk.MILESTONE_LABELS[alert.milestone][0]
        span = tk.format_span(alert.overdue_by)
        tz = self.config.tz
        head = f"【{SEVERITY_ZH.get(row.severity, row.severity)}】"
        if alert.kind == tk.ESCALATE:
            title = f"{head}升级：工单 {row.number} {name}超时 {span} 仍未完成"
        else:
            title = f"{head}工单 {row.number} {name}超时 {span}"
        summary = (f"「{name}」时限 {tk.format_span(limit)}，截止 {alert.deadline.astimezone(tz):%m-%d %H:%M}，"
                   f"已超时 {span}。{row.title}")
        facts = (("工单", row.number), ("状态", tk.STATE_LABELS[row.state][0]),
                 ("负责人", row.assignee or "未分配"), ("类别", _category_zh(row.category)),
                 ("投诉人", cipher_for(self.config).decrypt("complainant", row.complainant) or "-"),
                 ("平台", row.platform or "-"),
                 ("升级次数", str(row.escalation + (1 if alert.kind == tk.ESCALATE else 0))))
        reasons = (f"{name}时限已过 {span}" + ("，提醒后仍未完成，已升级" if alert.kind == tk.ESCALATE else ""),)
        kind = "ticket.escalated" if alert.kind == tk.ESCALATE else "ticket.overdue"
        message = Message(kind=kind, severity=row.severity, title=title, summary=summary, facts=facts,
                          reasons=reasons, link=self._link(row.id),
                          data={"ticket_id": row.id, "number": row.number, "milestone": alert.milestone,
                                "deadline": alert.deadline.isoformat(),
                                "overdue_seconds": int(alert.overdue_by.total_seconds())})
        cycle = f"#{row.reopened}" if alert.milestone == tk.RESOLVE and row.reopened else ""
        # Quiet hours hold reminders below their severity until morning, like incident messages.
        enqueue(conn, key=f"ticket:{row.id}:{alert.kind}:{alert.milestone}{cycle}",
                channels=self._channels(row, alert.kind), message=message, subject=f"ticket:{row.id}", now=now,
                not_before=quiet_until(self.config, now, row.severity))
        self._event(conn, row.id, now, "sla", alert.kind, None, None, title,
                    {"milestone": alert.milestone, "overdue_seconds": int(alert.overdue_by.total_seconds())})


# -- helpers -------------------------------------------------------------------------------------------------------

def ticket_times(row: Any, resolve_from: datetime | None) -> tk.TicketTimes:
    """The SLA view of a tickets row (``resolve_from``: its last reopen, from :func:`resolve_restarts`)."""
    return tk.TicketTimes(row.state, row.created_at, row.acknowledged_at, row.responded_at, row.verified_at,
                          row.resolved_at, resolve_from, dict(row.reminded or {}))


def resolve_restarts(conn: Connection, ids: Sequence[int]) -> dict[int, datetime]:
    """Per ticket id, the last return to 处理 after a solution (its resolve clock restarts there)."""
    out: dict[int, datetime] = {}
    ids = list(ids)
    for i in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
        rows = conn.execute(select(ticket_events.c.ticket_id, func.max(ticket_events.c.at))
                            .where(ticket_events.c.ticket_id.in_(ids[i:i + 500]),
                                   ticket_events.c.action == "reopen")
                            .group_by(ticket_events.c.ticket_id))
        out.update({int(tid): at for tid, at in rows})
    return out


def _event(r: Any) -> TicketEvent:
    return TicketEvent(r.id, r.at, r.actor, r.action, r.from_state, r.to_state, r.note, r.data)


def _overlap(keys: Sequence[str], words: Sequence[str], other_keys: Sequence[str],
             other_words: Sequence[str]) -> tuple[float, str]:
    """(score, why) of two incidents being one topic: a shared topic key (score 2) or shared keywords (share)."""
    shared = sorted({k for k in keys if k.startswith("topic:")} & set(other_keys))
    if shared:
        return 2.0, f"同一话题 {', '.join(shared)}"
    a, b = set(words), set(other_words)
    if a and b:
        share = len(a & b) / min(len(a), len(b))
        if share >= FLARE_KEYWORD_SHARE:
            return share, f"关键词重合 {'、'.join(sorted(a & b))}"
    return 0.0, ""


def _category_zh(code: str | None) -> str:
    from monitor.analysis.category import DISPLAY_NAMES

    return DISPLAY_NAMES.get(code or "", code or "-")
