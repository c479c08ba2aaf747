"""The analysis stage of the daemon: new posts of each poll -> annotations, surge signals, incidents -> database.

Runs on the daemon's worker thread, after the poll's posts are committed. A crash between the two commits leaves
posts with no ``analysed_at``; the next start analyses them first. On start the stage also learns the watches'
baselines from the stored history, takes back the open incidents and re-reads the last window of posts, so a
surge in progress when the daemon restarted is not forgotten.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Connection

from alerts.incidents import REFLARE_SECONDS, Change, IncidentTracker
from alerts.notify import Notifier
from monitor.analysis.pipeline import ALL_POSTS, Analyzer
from monitor.config import Config
from monitor.db.store import Store
from monitor.logs import event
from monitor.metrics import record_incident_opened
from monitor.normalize import Post

log = logging.getLogger("monitor.analysis")
#: Days of history the baselines are learned from after a restart.
HISTORY_DAYS = 14
#: The most posts re-read at start (the newest of the topic window): start-up on a busy stream stays as it was when
#: only the last hour was re-read (20,000 posts then too).
REREAD_POSTS = 20_000
#: Posts analysed per transaction when catching up.
CATCH_UP_BATCH = 2000


class AnalysisStage:
    """Analyzer + incident tracker + store, for the daemon."""

    def __init__(self, config: Config, store: Store) -> None:
        self.store = store
        self.analyzer = Analyzer(config.watches, config.detection, config.analysis)
        self._topic_window = config.analysis.topic_window
        self._authors: dict[str, tuple[str, str]] = {}
        self._categories: dict[str, str | None] = {}
        self.notifier = Notifier(config)
        self.queue: Any = None  # the complaint queue (alerts.queue.TicketQueue) when queue.enabled
        self.configure_alerts(config)
        self.tracker = IncidentTracker(self._authors.get, self.analyzer.topic_label,
                                       post_topic=self.analyzer.topic_of,
                                       post_watches=self.analyzer.watches_of,
                                       reopenable=lambda iid: store.incident_status(iid) == "quiet",
                                       post_origin=self.analyzer.origin_of)

    def configure_alerts(self, config: Config) -> None:
        """Take new notification and queue settings (a config reload that left the analysis alone)."""
        from alerts.queue import TicketQueue

        self.notifier = Notifier(config)
        self.queue = TicketQueue(self.store.engine, config) if config.queue.enabled else None

    def start(self, now: datetime) -> int:
        """Seed baselines, restore open and lately quiet incidents, re-read the topic window, analyse posts left
        unanalysed; returns how many were caught up."""
        from monitor.analysis.native import MISSING_HINT, missing

        if absent := missing():
            event(log, "analysis.pure_python", logging.WARNING, missing=",".join(absent), hint=MISSING_HINT)
        history = self.store.negative_history(now - timedelta(days=HISTORY_DAYS))
        names = self.analyzer.matcher.names or [ALL_POSTS]
        for watch in names:
            if watch in history:
                self.analyzer.detector.seed_baseline(f"watch:{watch}", history[watch])
        # The windows of the stream as it stood (the posts' own time, like every window), not of the wall clock:
        # after a long stop nothing is lost, and the first new posts end what is over.
        end = self.store.stream_end(now) or now
        for incident in self.store.load_incidents(status="open"):
            self.tracker.restore(incident)
        # Incidents gone quiet lately are kept too, so the same grievance flaring up after a restart reopens its
        # incident (and its ticket) instead of opening a second one.
        recent_quiet = self.store.load_incidents(status="quiet", updated_since=end - timedelta(seconds=REFLARE_SECONDS))
        for incident in sorted(recent_quiet, key=lambda i: i.updated_at):
            self.tracker.restore(incident)
        # Re-read the topic window (analysed posts: the others are caught up below): topics, duplicates and what
        # reposts spread are as they were, and the incidents' posts get this process's topic ids. Only the detection
        # window's posts reach the detector (the stream time is set to where it stood, so older ones are not fresh);
        # its signals are dropped: the incidents they belong to were restored above.
        reread = timedelta(seconds=max(self.analyzer.detection.window, self._topic_window))
        posts = [p.to_post() for p in self.store.recent_posts(since=end - reread, limit=REREAD_POSTS,
                                                                  analysed_only=True)]
        if posts:
            self._remember(posts)
            self.analyzer.stream_time = max(self.analyzer.stream_time, end.timestamp())
            self.analyzer.process(posts)
        # Restored incidents take their posts' topics in this process; those whose surge ended meanwhile go quiet.
        quiet = self.tracker.resume(self.analyzer.topic_of, self.analyzer.detector.active())
        self.store.mark_quiet([i.id for i in quiet], now)
        caught_up = 0
        while True:
            pending = self.store.unanalysed_posts(CATCH_UP_BATCH)
            if not pending:
                break
            self.process(pending, now)
            caught_up += len(pending)
        if caught_up:
            event(log, "analysis.caught_up", posts=caught_up)
        return caught_up

    def process(self, posts: Sequence[Post], now: datetime) -> list[Change]:
        """Analyse new posts and store annotations and incident changes in one transaction."""
        posts = [p for p in posts if p.uid not in self._authors]  # caught up at start already
        if not posts:
            return []
        self._remember(posts)
        notes, signals = self.analyzer.process(posts)
        for n in notes:
            self._categories[n.uid] = n.category
        changes = self.tracker.apply(signals, notes, self.analyzer.stream_time)
        categories = {ch.incident.id: self._category(ch.incident.post_ids) for ch in changes}

        def then(conn: Connection, incident_ids: list[int]) -> None:
            # Same transaction as the incident rows: tickets and messages commit with the change that caused them.
            if self.queue is not None:
                for ch in changes:
                    self.queue.handle_change(conn, ch, now)
                self.queue.open_for_posts(conn, posts, notes, now)
            reflared = {ch.incident.id for ch in changes if ch.reopened}
            for incident_id in incident_ids:
                self.notifier.on_incident(conn, incident_id, now, reflared=incident_id in reflared)

        self.store.save_analysis(notes, changes, now, categories=categories, then=then)
        ended = self.analyzer.detector.expire(self.analyzer.stream_time)
        quiet = self.tracker.close_keys(ended)
        self.store.mark_quiet([i.id for i in quiet], now)
        for ch in changes:
            if ch.opened or ch.escalated or ch.reopened:
                inc = ch.incident
                if ch.opened:
                    record_incident_opened(inc.severity)
                name = "incident.opened" if ch.opened else "incident.reflared" if ch.reopened else "incident.escalated"
                event(log, name, logging.WARNING,
                      id=inc.id, severity=inc.severity, title=inc.title, posts=len(inc.post_ids),
                      authors=len(inc.authors), score=inc.score)
        self._forget(now)
        return changes

    def _category(self, post_ids: dict[str, str]) -> str | None:
        """The incident's complaint category: the most common one among its posts."""
        counts = Counter(c for pid in post_ids if (c := self._categories.get(pid)))
        return counts.most_common(1)[0][0] if counts else None

    def _remember(self, posts: Sequence[Post]) -> None:
        for p in posts:
            self._authors[p.uid] = (p.author or p.author_id or p.uid, p.source)

    def _forget(self, now: datetime) -> None:
        # Author lookups are needed for posts inside the detection window only; keep the map from growing forever.
        if len(self._authors) > 200_000:
            keep = set(list(self._authors)[-100_000:])
            for pid in list(self._authors):
                if pid not in keep:
                    del self._authors[pid]
                    self._categories.pop(pid, None)
