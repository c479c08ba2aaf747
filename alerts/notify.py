"""When to tell the team about an incident, and what: the notification policy, written into the outbox.

In the spirit of Alertmanager's grouping: a new incident waits ``group_wait`` so the posts that follow within
seconds go out in its first message; after that, a message goes out when the incident escalates (severity up, or
its volume doubled since the last message) or every ``repeat_interval`` while it stays open, and never twice within
``group_interval``. While a message is still waiting, later changes update it instead of queueing another, so the
team gets one message with the latest numbers. Silences turn messages into audit rows; quiet hours hold everything
below their severity until morning. Everything happens in the caller's transaction (the incident change and its
notification commit together).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from alerts.message import SEVERITY_EMOJI, SEVERITY_ZH, Message, PostRef
from alerts.outbox import PENDING, SILENCED, enqueue, pending_for
from alerts.routing import route
from monitor.analysis.category import DISPLAY_NAMES as CATEGORY_ZH
from monitor.analysis.surge import SEVERITIES, Reason, render_reason
from monitor.config import Config
from monitor.db.schema import incident_events, incident_posts, incidents, notifications, posts, silences
from monitor.db.store import posts_by_uid
from monitor.logs import event

log = logging.getLogger("monitor.alerts")

#: How many representative posts a message quotes.
QUOTED_POSTS = 3


@dataclass(frozen=True)
class Silence:
    """One active silence: every given matcher must match (a missing one matches anything)."""

    watch: str | None = None
    source: str | None = None
    keyword: str | None = None
    incident_id: int | None = None
    ends_at: datetime | None = None
    id: int | None = None  # database silences have one; config silences do not

    def matches(self, incident_id: int, watches: Sequence[str], srcs: Sequence[str], text: str) -> bool:
        """Whether this silence covers an incident with these labels."""
        if self.incident_id is not None and self.incident_id != incident_id:
            return False
        if self.watch is not None and self.watch not in watches:
            return False
        if self.source is not None and self.source not in srcs:
            return False
        return self.keyword is None or self.keyword.lower() in text.lower()


def active_silences(conn: Connection, config: Config, now: datetime) -> list[Silence]:
    """Silences in force at ``now``: the config's and the database's."""
    out = []
    for s in config.alerts.silences:
        until = datetime.fromisoformat(s.until) if s.until else None
        if until is not None and until.tzinfo is None:
            until = until.replace(tzinfo=config.tz)
        if until is None or until > now:
            out.append(Silence(s.watch, s.source, s.keyword, None, until))
    rows = conn.execute(select(silences).where(silences.c.starts_at <= now, silences.c.ends_at > now))
    out += [Silence(r.watch, r.source, r.keyword, r.incident_id, r.ends_at, r.id) for r in rows]
    return out


def quiet_until(config: Config, now: datetime, severity: str) -> datetime | None:
    """When quiet hours end, if ``now`` falls inside them and ``severity`` is below their bar; else None."""
    quiet = config.alerts.quiet_hours
    if quiet is None or SEVERITIES.index(severity) >= SEVERITIES.index(quiet.min_severity):
        return None
    tz = ZoneInfo(config.timezone)
    local = now.astimezone(tz)
    start = tuple(int(x) for x in quiet.start.split(":"))
    end = tuple(int(x) for x in quiet.end.split(":"))
    t = (local.hour, local.minute)
    inside = start <= t < end if start < end else (t >= start or t < end)
    if not inside or start == end:
        return None
    end_at = local.replace(hour=end[0], minute=end[1], second=0, microsecond=0)
    if end_at <= local:
        end_at += timedelta(days=1)
    return end_at


class Notifier:
    """The notification policy for one config."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.alerts = config.alerts
        self.enabled = [c.name for c in config.channels if c.enabled]

    # -- incidents -----------------------------------------------------------------------------------------------
    def on_incident(self, conn: Connection, incident_id: int, now: datetime, *, repeat: bool = False,
                    reflared: bool = False) -> int:
        """Decide whether the incident's current state is worth a message; write it. Returns rows written.

        ``repeat``: the reminder of an unacknowledged incident. ``reflared``: a quiet incident surged again, which
        is news even when acknowledged (the team may have thought it over).
        """
        row = conn.execute(select(incidents).where(incidents.c.id == incident_id)).one_or_none()
        if row is None or row.status == "resolved":
            return 0
        severity = row.severity
        if SEVERITIES.index(severity) < SEVERITIES.index(self.alerts.min_severity):
            return 0
        first = row.notified_at is None
        sev_up = not first and SEVERITIES.index(severity) > SEVERITIES.index(row.notified_severity or "blue")
        doubled = not first and row.notified_posts > 0 and row.posts >= 2 * row.notified_posts
        if not (first or sev_up or doubled or repeat or reflared):
            return 0
        if row.acked_at is not None and not sev_up and not first and not reflared:
            return 0  # acknowledged: the team is on it; only a higher severity or a new flare-up is news
        kind = "incident.opened" if first else ("incident.escalated" if sev_up else "incident.reflared" if reflared
                                                else "incident.escalated" if doubled else "incident.repeat")
        subject = f"incident:{incident_id}"
        message = self.incident_message(conn, row, kind, now)
        watches = list(row.watches or [])
        srcs = list(row.sources or [])
        channels = route(self.alerts, self.enabled, watches=watches, sources=srcs, category=row.category,
                         severity=severity)
        pending = pending_for(conn, subject)
        # Bring what is waiting up to date instead of queueing a second message.
        if pending:
            if pending[0][4] == "incident.opened":  # the team has not heard of it yet: still news of an opening
                kind = "incident.opened"
                message = self.incident_message(conn, row, kind, now)
            due = min(p[3] for p in pending)
            if sev_up and quiet_until(self.config, now, severity) is None:
                # An escalation waiting for the morning (quiet hours) goes out after the usual group wait.
                due = min(due, now + timedelta(seconds=self.alerts.group_wait))
            for pid, *_ in pending:
                conn.execute(update(notifications).where(notifications.c.id == pid).values(
                    message=message.to_json(), severity=severity, not_before=due, next_attempt_at=due))
            have = {p[1] for p in pending}
            channels = [c for c in channels if c not in have]
            key = pending[0][2].rsplit(">", 1)[0]
            written = enqueue(conn, key=key, channels=channels, message=message, subject=subject, now=now,
                              not_before=due) if channels else []
            self._mark(conn, row, now, bump=False)
            return len(written)
        if first:
            not_before = now + timedelta(seconds=self.alerts.group_wait)
        else:
            last = row.notified_at
            not_before = max(now, last + timedelta(seconds=self.alerts.group_interval)) if last else now
        morning = quiet_until(self.config, now, severity)
        if morning is not None:
            not_before = max(not_before, morning)
        text = " ".join([row.title or "", *(row.keywords or [])])
        silenced = [s for s in active_silences(conn, self.config, now) if s.matches(incident_id, watches, srcs, text)]
        status = SILENCED if silenced else PENDING
        key = f"{subject}#{row.notify_seq + 1}"
        written = enqueue(conn, key=key, channels=channels, message=message, subject=subject, now=now,
                          not_before=not_before, status=status)
        self._mark(conn, row, now, bump=True)
        if silenced:
            event(log, "incident.silenced", id=incident_id, silence=silenced[0].id or "config")
            self._event(conn, incident_id, now, "silenced", f"{kind} 被静默规则拦截")
        elif not channels:
            event(log, "incident.no_channel", logging.WARNING, id=incident_id,
                  hint="no channel is configured or enabled for it; add channels: and alerts.routes to the config")
        return len(written)

    def repeat_due(self, engine: Engine, now: datetime) -> int:
        """Remind about open, unacknowledged incidents last notified ``repeat_interval`` ago (a scheduler job)."""
        cutoff = now - timedelta(seconds=self.alerts.repeat_interval)
        total = 0
        with engine.begin() as conn:
            ids = conn.execute(select(incidents.c.id).where(
                incidents.c.status == "open", incidents.c.acked_at.is_(None),
                incidents.c.notified_at.is_not(None), incidents.c.notified_at <= cutoff)).scalars().all()
            for incident_id in ids:
                total += self.on_incident(conn, incident_id, now, repeat=True)
        return total

    def _mark(self, conn: Connection, row: Any, now: datetime, *, bump: bool) -> None:
        r = row
        values: dict[str, object] = {"notified_at": now, "notified_severity": r.severity, "notified_posts": r.posts}
        if bump:
            values["notify_seq"] = incidents.c.notify_seq + 1
        conn.execute(update(incidents).where(incidents.c.id == r.id).values(**values))

    @staticmethod
    def _event(conn: Connection, incident_id: int, now: datetime, action: str, note: str) -> None:
        conn.execute(incident_events.insert().values(incident_id=incident_id, at=now, actor="monitor",
                                                     action=action, note=note))

    # -- the message -------------------------------------------------------------------------------------------------
    def incident_message(self, conn: Connection, row: Any, kind: str, now: datetime) -> Message:
        """The message for an incident row as it stands."""
        r = row
        tz = ZoneInfo(self.config.timezone)
        sev = r.severity
        label = {"incident.opened": "新预警", "incident.escalated": "预警升级", "incident.repeat": "持续中",
                 "incident.reflared": "再次升温"}[kind]
        title = f"{SEVERITY_EMOJI[sev]}【{SEVERITY_ZH[sev]}预警·{label}】{r.title}"
        reasons = tuple(render_reason(Reason(c, tuple((k, v) for k, v in vals)))
                        for c, vals in (r.reasons or []))
        opened = r.opened_at.astimezone(tz)
        minutes = max(1, round((now - r.opened_at).total_seconds() / 60))
        facts = [("相关帖子", str(r.posts)), ("涉及用户", str(r.authors)),
                 ("平台", "、".join(r.sources or []) or "-"),
                 ("首次发现", opened.strftime("%m-%d %H:%M")), ("持续", f"{minutes} 分钟")]
        if r.category:
            facts.append(("投诉类别", CATEGORY_ZH.get(r.category, r.category)))
        keywords = list(r.keywords or [])
        summary = (f"关键词：{'、'.join(keywords[:5])}" if keywords else "") or "负面讨论集中出现"
        link = f"{self.alerts.console_url.rstrip('/')}/incidents/{r.id}"
        data = {"incident": {"id": r.id, "severity": sev, "title": r.title,
                             "status": r.status, "opened_at": r.opened_at.isoformat(),
                             "posts": r.posts, "authors": r.authors,
                             "sources": list(r.sources or []), "keywords": keywords,
                             "watches": list(r.watches or []), "category": r.category,
                             "score": r.score}}
        return Message(kind=kind, severity=sev, title=title, summary=summary, facts=tuple(facts), reasons=reasons,
                       posts=tuple(self.representative_posts(conn, r, tz)), link=link, data=data)

    @staticmethod
    def representative_posts(conn: Connection, row: Any, tz: ZoneInfo) -> list[PostRef]:
        """Up to three posts that show the incident: the topic's representative first, then the most engaged
        negative posts, one per author, preferring different platforms."""
        r = row
        members = conn.execute(select(incident_posts.c.post_uid).where(
            incident_posts.c.incident_id == r.id)).scalars().all()
        if not members:
            return []
        found = posts_by_uid(conn, members[:2000], posts.c.text, posts.c.title, posts.c.url, posts.c.author,
                             posts.c.published_at, posts.c.reposts, posts.c.comments, posts.c.negative)
        rep = r.representative

        def rank(p: Any) -> tuple[int, float, int]:
            q = p
            engaged = (q.reposts or 0) + (q.comments or 0)
            return (0 if f"{q.source_name}:{q.native_id}" == rep else 1,
                    -(q.negative or 0.0) // 0.25, -engaged)

        chosen: list[Any] = []
        used_authors: set[str] = set()
        used_sources: set[str] = set()
        ordered = sorted(found, key=rank)
        for prefer_new_source in (True, False):
            for p in ordered:
                if len(chosen) >= QUOTED_POSTS:
                    break
                if p in chosen or (p.author and p.author in used_authors):
                    continue
                if prefer_new_source and p.source_name in used_sources and chosen:
                    continue
                chosen.append(p)
                used_authors.add(p.author)
                used_sources.add(p.source_name)
        return [PostRef(text=(p.text or p.title or "")[:500], url=p.url or "", author=p.author or "",
                        source=p.source_name, published_at=p.published_at.astimezone(tz).isoformat())
                for p in chosen]
