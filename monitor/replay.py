"""``monitor replay``: a recorded stream through the real pipeline on a simulated clock.

Posts are read from JSON lines, sorted by their time and fed in batches to the same stages the daemon runs: stored
(as polls of their sources), analysed, surge-detected, turned into incidents and stored again. The clock is the
stream's own: an incident's ``opened_at`` is the time of the post that raised it, so the delay from the start of a
burst to its incident is measured exactly, whatever the batch size. No network; a temporary SQLite database unless
``db_url`` is given.
"""

from __future__ import annotations

import json
import math
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from monitor.config import Config
from monitor.source import SOURCE_NAME

#: Posts stored and analysed per step. Large enough for batched inserts; signals carry their own post times.
BATCH = 2000


class ReplayInputError(ValueError):
    """The input file cannot be replayed (no readable line at all)."""


@dataclass(frozen=True)
class ReplayResult:
    """Figures of one replay."""

    posts: int
    skipped: int
    incidents: int
    seconds: float
    problems: list[str]


def read_stream(path: Path, problems: list[str]) -> list[dict[str, Any]]:
    """Valid records of a JSON-lines file, with their parsed time; a bad line is a problem, not the end."""
    records: list[dict[str, Any]] = []
    try:
        handle = path.open(encoding="utf-8")
    except OSError as exc:
        raise ReplayInputError(f"cannot read {path}: {exc.strerror}") from None
    with handle:
        for number, line in enumerate(handle, 1):
            if not line.strip():
                continue
            try:
                records.append(_record(json.loads(line)))
            except (ValueError, TypeError) as exc:
                if len(problems) < 100:
                    problems.append(f"{path}:{number}: {exc}; line skipped")
                elif len(problems) == 100:
                    problems.append("... more bad lines not listed")
    return records


def _record(data: Any) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ValueError("expected a JSON object with id, source, author, text, published_at")
    missing = [k for k in ("id", "source", "text", "published_at") if data.get(k) in (None, "")]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    source = str(data["source"])
    if not SOURCE_NAME.match(source):
        raise ValueError(f"source {source!r} is not a valid name (letters, digits, '_', '-', '.')")
    try:
        when = datetime.fromisoformat(str(data["published_at"]).replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"published_at {data['published_at']!r} is not ISO 8601") from None
    if when.tzinfo is None:
        raise ValueError(f"published_at {data['published_at']!r} has no UTC offset (write +08:00 or Z)")
    return {**data, "source": source, "_when": when.astimezone(UTC)}


class Progress:
    """A progress bar on stderr: redrawn in place on a terminal, a line per 10 % otherwise."""

    def __init__(self, total: int, stream: IO[str] | None = None) -> None:
        self.total = max(total, 1)
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self.started = time.perf_counter()
        self._last_decile = -1
        self._last_draw = 0.0

    def update(self, done: int, incidents: int, *, final: bool = False) -> None:
        """Show ``done`` posts of the total."""
        now = time.perf_counter()
        rate = done / max(now - self.started, 1e-9)
        share = done / self.total
        if self.tty:
            if not final and now - self._last_draw < 0.2:
                return
            self._last_draw = now
            bar = "#" * int(share * 30)
            self.stream.write(f"\rreplay [{bar:<30}] {done:,}/{self.total:,} posts  {rate:,.0f}/s  "
                              f"{incidents} incident(s)")
            if final:
                self.stream.write("\n")
        else:
            decile = int(share * 10)
            if decile != self._last_decile or final:
                self._last_decile = decile
                self.stream.write(f"replay {share:4.0%} {done:,}/{self.total:,} posts {rate:,.0f}/s "
                                  f"{incidents} incident(s)\n")
        self.stream.flush()


def replay(config: Config, input_path: Path, output_path: Path, *, db_url: str | None = None,
           progress: IO[str] | None = None) -> ReplayResult:
    """Replay ``input_path`` through the pipeline and write one JSON line per incident to ``output_path``."""
    from zoneinfo import ZoneInfo

    from sqlalchemy import event

    from alerts.incidents import Incident, IncidentTracker
    from monitor.analysis.pipeline import Analyzer
    from monitor.analysis.surge import from_epoch, render_reason
    from monitor.db import Store, make_engine, upgrade
    from monitor.normalize import normalize
    from monitor.source import RawPost

    problems: list[str] = []
    records = read_stream(input_path, problems)
    if not records:
        raise ReplayInputError(f"{input_path}: no post could be read" + (f" ({problems[0]})" if problems else ""))
    records.sort(key=lambda r: r["_when"])
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="monitor-replay-") as tmp:
        engine = make_engine(db_url or f"sqlite:///{Path(tmp) / 'replay.db'}")
        if db_url is None:
            # A scratch database, deleted at the end: nothing in it has to survive a power cut, so SQLite need not
            # wait for the disk (the daemon's own database keeps WAL with synchronous=NORMAL).
            event.listen(engine, "connect", _scratch_pragmas)
        upgrade(engine)
        store = Store(engine)
        names = sorted({r["source"] for r in records})
        store.sync_sources([(n, "replay", "") for n in names], records[0]["_when"])
        analyzer = Analyzer(config.watches, config.detection, config.analysis)
        authors: dict[str, tuple[str, str]] = {}
        tracker = IncidentTracker(authors.get, analyzer.topic_label, next_id=_next_incident_id(store),
                                  post_topic=analyzer.topic_of, post_watches=analyzer.watches_of,
                                  post_origin=analyzer.origin_of)
        seen: dict[int, Incident] = {}
        bar = Progress(len(records), progress)
        tz = ZoneInfo(config.timezone)
        done = 0
        for batch in _batches(records, BATCH):
            now = batch[-1]["_when"]
            by_source: dict[str, list[Any]] = {}
            for r in batch:
                raw = RawPost(native_id=str(r["id"]), text=str(r["text"]), title=str(r.get("title") or ""),
                              url=str(r.get("url") or ""), author=str(r.get("author") or ""),
                              published_at=r["_when"], reposts=_int(r.get("reposts")),
                              comments=_int(r.get("comments")), likes=_int(r.get("likes")))
                post = normalize(raw, source=r["source"], fetched_at=r["_when"], tz=tz)
                by_source.setdefault(r["source"], []).append(post)
            fresh = []
            for name, posts in by_source.items():
                summary = store.commit_run(name, posts, {}, started_at=now, finished_at=now, pages=0)
                fresh += summary.new_posts
            for post in fresh:
                authors[post.uid] = (post.author or post.uid, post.source)
            notes, signals = analyzer.process(fresh)
            changes = tracker.apply(signals, notes, analyzer.stream_time)
            store.save_analysis(notes, changes, now)
            for change in changes:
                seen[change.incident.id] = change.incident
            ended = analyzer.detector.expire(now.timestamp())
            quiet = tracker.close_keys(ended)
            store.mark_quiet([i.id for i in quiet], now)
            done += len(batch)
            bar.update(done, len(seen))
        bar.update(done, len(seen), final=True)
        engine.dispose()
    with output_path.open("w", encoding="utf-8") as out:
        for inc in sorted(seen.values(), key=lambda i: (i.opened_at, i.id)):
            out.write(json.dumps({
                "id": inc.id, "opened_at": from_epoch(inc.opened_at).isoformat(), "severity": inc.severity,
                "title": inc.title, "keywords": inc.keywords, "post_ids": list(inc.post_ids),
                "sources": sorted(inc.sources), "authors": len(inc.authors),
                "reasons": [render_reason(r, "en") for r in inc.reasons],
                "reasons_zh": [render_reason(r, "zh") for r in inc.reasons],
                "score": inc.score, "watches": inc.watch_names,
            }, ensure_ascii=False) + "\n")
    return ReplayResult(len(records), len([p for p in problems if ":" in p]), len(seen),
                        time.perf_counter() - started, problems)


def _scratch_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA synchronous=OFF")
    cur.close()


def _batches(records: list[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    for i in range(0, len(records), size):
        yield records[i:i + size]


def _int(value: Any) -> int | None:
    if value in (None, ""):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return int(number) if math.isfinite(number) else None


def _next_incident_id(store: Any) -> int:
    existing = store.load_incidents()
    return max((i.id for i in existing), default=0) + 1
