"""The analysis stage of the daemon: new posts of each poll -> annotations, surge signals, incidents -> database.

Runs on the daemon's worker thread, after the poll's posts are committed. A crash between the two commits leaves
posts with no ``analysed_at``; the next start analyses them first. On start the stage also learns the watches'
baselines from the stored history, takes back the open incidents and re-reads the last window of posts, so a
surge in progress when the daemon restarted is not forgotten.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import datetime, timedelta

from alerts.incidents import Change, IncidentTracker
from monitor.analysis.pipeline import ALL_POSTS, Analyzer
from monitor.config import Config
from monitor.db.store import Store
from monitor.logs import event
from monitor.normalize import Post

log = logging.getLogger("monitor.analysis")
#: Days of history the baselines are learned from after a restart.
HISTORY_DAYS = 14
#: Posts analysed per transaction when catching up.
CATCH_UP_BATCH = 2000


class AnalysisStage:
    """Analyzer + incident tracker + store, for the daemon."""

    def __init__(self, config: Config, store: Store) -> None:
        self.store = store
        self.analyzer = Analyzer(config.watches, config.detection, config.analysis)
        self._authors: dict[str, tuple[str, str]] = {}
        self.tracker = IncidentTracker(self._authors.get, self.analyzer.topic_label,
                                       post_topic=self.analyzer.topic_of,
                                       post_watches=self.analyzer.watches_of)

    def start(self, now: datetime) -> int:
        """Seed baselines, restore open incidents, refill the window, analyse posts left unanalysed; returns how
        many were caught up."""
        history = self.store.negative_history(now - timedelta(days=HISTORY_DAYS))
        names = self.analyzer.matcher.names or [ALL_POSTS]
        for watch in names:
            if watch in history:
                self.analyzer.detector.seed_baseline(f"watch:{watch}", history[watch])
        for incident in self.store.load_incidents(status="open"):
            self.tracker.restore(incident)
        window = timedelta(seconds=self.analyzer.detection.window)
        posts = [p.to_post() for p in self.store.recent_posts(since=now - window, limit=20_000)]
        if posts:
            self._remember(posts)
            # Signals of the refill are dropped: the incidents they belong to were restored above.
            self.analyzer.process(posts)
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
        changes = self.tracker.apply(signals)
        self.store.save_analysis(notes, changes, now)
        ended = self.analyzer.detector.expire(self.analyzer.stream_time)
        quiet = self.tracker.close_keys(ended)
        self.store.mark_quiet([i.id for i in quiet], now)
        for ch in changes:
            if ch.opened or ch.escalated:
                inc = ch.incident
                event(log, "incident.opened" if ch.opened else "incident.escalated", logging.WARNING,
                      id=inc.id, severity=inc.severity, title=inc.title, posts=len(inc.post_ids),
                      authors=len(inc.authors), score=inc.score)
        self._forget(now)
        return changes

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
