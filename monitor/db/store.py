"""The Store: every read and write of sources, posts and runs, each write one transaction.

Synchronous on purpose: the daemon calls it from one worker thread, which also serialises SQLite writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, and_, bindparam, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from monitor.db.schema import (
    incident_events,
    incident_points,
    incident_posts,
    incidents,
    posts,
    source_runs,
    sources,
)
from monitor.errors import StorageError
from monitor.normalize import Post

if TYPE_CHECKING:
    from alerts.incidents import Change, Incident
    from monitor.analysis.pipeline import Annotation

# Health states of a source. LAYOUT: pages arrive but the selectors find nothing (the site changed its layout).
NEW, OK, FAILING, BLOCKED, LAYOUT, REMOVED = "new", "ok", "failing", "blocked", "layout", "removed"


@dataclass(frozen=True)
class SourceState:
    """What the runner needs to know about a source before a poll."""

    id: int
    name: str
    cursor: dict[str, Any]
    status: str
    consecutive_failures: int
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class RunSummary:
    """The outcome of a stored run."""

    new: int
    updated: int
    new_posts: list[Post]


@dataclass(frozen=True)
class SourceHealth:
    """One row of ``monitor sources``."""

    name: str
    type: str
    status: str
    last_run_at: datetime | None
    last_success_at: datetime | None
    last_failure_at: datetime | None
    consecutive_failures: int
    last_error: str | None
    posts_total: int
    next_attempt_at: datetime | None


@dataclass(frozen=True)
class StoredPost:
    """A post as read back from the database."""

    id: int
    source: str
    native_id: str
    title: str
    text: str
    url: str
    author: str
    author_id: str
    published_at: datetime
    fetched_at: datetime
    reposts: int | None
    comments: int | None
    likes: int | None
    content_hash: str
    extra: dict[str, Any]

    @property
    def uid(self) -> str:
        """Globally unique id, ``source:native_id``."""
        return f"{self.source}:{self.native_id}"

    def to_post(self) -> Post:
        """The post as the pipeline handles it (to analyse stored posts again)."""
        return Post(source=self.source, native_id=self.native_id, text=self.text, fetched_at=self.fetched_at,
                    published_at=self.published_at, title=self.title, url=self.url, author=self.author,
                    author_id=self.author_id, reposts=self.reposts, comments=self.comments, likes=self.likes,
                    content_hash=self.content_hash, extra=self.extra)


class Store:
    """Reads and writes through one engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._insert = pg_insert if engine.dialect.name == "postgresql" else sqlite_insert

    # -- sources -------------------------------------------------------------------------------------------------
    def sync_sources(self, configured: Iterable[tuple[str, str, str]], now: datetime) -> None:
        """Make the sources table match the config: ``(name, type, digest)`` rows; others are marked removed.

        A changed source keeps its cursor unless its type changed (a different kind reads cursors differently).
        """
        wanted = {name: (kind, digest) for name, kind, digest in configured}
        with self._begin() as conn:
            rows = {r.name: r for r in conn.execute(select(sources.c.name, sources.c.type, sources.c.status))}
            for name, (kind, digest) in wanted.items():
                row = rows.get(name)
                if row is None:
                    conn.execute(sources.insert().values(name=name, type=kind, config_digest=digest, status=NEW,
                                                         created_at=now, updated_at=now))
                    continue
                values: dict[str, Any] = {"config_digest": digest, "updated_at": now, "removed_at": None}
                if row.type != kind:
                    values.update(type=kind, cursor=None)
                if row.status == REMOVED:
                    values.update(status=NEW, consecutive_failures=0, next_attempt_at=None)
                conn.execute(update(sources).where(sources.c.name == name).values(**values))
            gone = [n for n, r in rows.items() if n not in wanted and r.status != REMOVED]
            if gone:
                conn.execute(update(sources).where(sources.c.name.in_(gone))
                             .values(status=REMOVED, removed_at=now, updated_at=now))

    def reset_cursor(self, name: str, now: datetime) -> None:
        """Forget a source's cursor (its URL changed): the next poll starts afresh; stored posts stay."""
        with self._begin() as conn:
            conn.execute(update(sources).where(sources.c.name == name).values(cursor=None, updated_at=now))

    def source_state(self, name: str) -> SourceState:
        """The cursor and health of ``name``; KeyError if it was never synced."""
        with self._connect() as conn:
            row = conn.execute(select(sources).where(sources.c.name == name)).first()
        if row is None:
            raise KeyError(name)
        return SourceState(row.id, row.name, dict(row.cursor or {}), row.status, row.consecutive_failures,
                           row.next_attempt_at)

    def commit_run(self, name: str, new_posts: Sequence[Post], cursor: dict[str, Any], *, started_at: datetime,
                   finished_at: datetime, pages: int, problem: str | None = None) -> RunSummary:
        """Store a successful run: new posts, edited posts, the cursor and health, all in one transaction."""
        with self._begin() as conn:
            source_id = self._source_id(conn, name)
            fresh, edited = self._upsert_posts(conn, source_id, new_posts, finished_at)
            conn.execute(update(sources).where(sources.c.id == source_id).values(
                cursor=cursor, status=OK, last_run_at=finished_at, last_success_at=finished_at,
                consecutive_failures=0, next_attempt_at=None, updated_at=finished_at,
                last_error=problem, posts_total=sources.c.posts_total + len(fresh)))
            conn.execute(source_runs.insert().values(
                source_id=source_id, started_at=started_at, finished_at=finished_at, status=OK, pages=pages,
                new_posts=len(fresh), updated_posts=edited, error=problem))
        return RunSummary(len(fresh), edited, fresh)

    def record_failure(self, name: str, error: str, *, status: str, started_at: datetime, finished_at: datetime,
                       next_attempt_at: datetime | None) -> int:
        """Store a failed run; return the number of consecutive failures now."""
        with self._begin() as conn:
            source_id = self._source_id(conn, name)
            conn.execute(update(sources).where(sources.c.id == source_id).values(
                status=status, last_run_at=finished_at, last_failure_at=finished_at, last_error=error[:2000],
                consecutive_failures=sources.c.consecutive_failures + 1, next_attempt_at=next_attempt_at,
                updated_at=finished_at))
            conn.execute(source_runs.insert().values(
                source_id=source_id, started_at=started_at, finished_at=finished_at, status=status, error=error[:2000]))
            return int(conn.execute(select(sources.c.consecutive_failures)
                                    .where(sources.c.id == source_id)).scalar_one())

    def health(self, include_removed: bool = False) -> list[SourceHealth]:
        """Health of every source, by name."""
        query = select(sources).order_by(sources.c.name)
        if not include_removed:
            query = query.where(sources.c.status != REMOVED)
        with self._connect() as conn:
            return [SourceHealth(r.name, r.type, r.status, r.last_run_at, r.last_success_at, r.last_failure_at,
                                 r.consecutive_failures, r.last_error, r.posts_total, r.next_attempt_at)
                    for r in conn.execute(query)]

    # -- posts ---------------------------------------------------------------------------------------------------
    def recent_posts(self, *, source: str | None = None, since: datetime | None = None,
                     limit: int = 50, analysed_only: bool = False) -> list[StoredPost]:
        """Newest posts first (by publication time); with ``analysed_only``, those the analysis has seen."""
        query = (select(posts, sources.c.name.label("source_name")).join(sources, posts.c.source_id == sources.c.id)
                 .order_by(posts.c.published_at.desc(), posts.c.id.desc()).limit(limit))
        if analysed_only:
            query = query.where(posts.c.analysed_at.is_not(None))
        if source:
            query = query.where(sources.c.name == source)
        if since:
            query = query.where(posts.c.published_at >= since)
        with self._connect() as conn:
            return [_stored(r) for r in conn.execute(query)]

    def stream_end(self, now: datetime) -> datetime | None:
        """Publication time of the newest analysed post not dated after ``now`` (None with none): where the stream
        stood when the daemon last ran, which is what its windows are measured from after a restart."""
        # Typed as the column, so the aggregate comes back as the column's aware UTC time on every database.
        newest = func.max(posts.c.published_at, type_=posts.c.published_at.type)
        query = select(newest).where(posts.c.analysed_at.is_not(None), posts.c.published_at <= now)
        with self._connect() as conn:
            end: datetime | None = conn.execute(query).scalar_one_or_none()
        return end

    def count_posts(self, source: str | None = None) -> int:
        """How many posts are stored (for one source, or all)."""
        query = select(func.count()).select_from(posts)
        if source:
            query = query.join(sources, posts.c.source_id == sources.c.id).where(sources.c.name == source)
        with self._connect() as conn:
            return int(conn.execute(query).scalar_one())

    def prune_runs(self, older_than: datetime) -> int:
        """Delete run-log rows older than ``older_than`` (the log is for health views, not an archive)."""
        with self._begin() as conn:
            return conn.execute(source_runs.delete().where(source_runs.c.started_at < older_than)).rowcount or 0

    # -- analysis and incidents ------------------------------------------------------------------------------
    def save_analysis(self, notes: Sequence[Annotation], changes: Sequence[Change], now: datetime, *,
                      categories: dict[int, str | None] | None = None,
                      then: Callable[[Connection, list[int]], None] | None = None) -> None:
        """Store posts' annotations and the incident changes they caused, in one transaction.

        ``categories``: each changed incident's complaint category. ``then(conn, incident_ids)`` runs inside the
        same transaction after the writes: the notifier and the queue put their rows there, so an incident change
        and the messages and tickets it causes commit together or not at all.
        """
        from monitor.analysis.surge import from_epoch

        with self._begin() as conn:
            ids = {r.name: r.id for r in conn.execute(select(sources.c.id, sources.c.name))}
            if conn.dialect.name == "sqlite":
                _annotate_sqlite(conn, ids, notes, now)
                notes = ()
            rows = []
            for n in notes:
                source, native = n.uid.split(":", 1)
                if source in ids:
                    rows.append({"b_sid": ids[source], "b_nid": native, "negative": n.negative,
                                 "sentiment": n.sentiment, "watches": list(n.watches), "topic": n.topic,
                                 "dup_of": n.dup_of, "category": n.category, "cues": list(n.cues) or None,
                                 "analysed_at": now})
            if rows:
                stmt = (update(posts).where(and_(posts.c.source_id == bindparam("b_sid"),
                                                 posts.c.native_id == bindparam("b_nid")))
                        .values(negative=bindparam("negative"), sentiment=bindparam("sentiment"),
                                watches=bindparam("watches"), topic=bindparam("topic"), dup_of=bindparam("dup_of"),
                                category=bindparam("category"), cues=bindparam("cues"),
                                analysed_at=bindparam("analysed_at")))
                conn.execute(stmt.execution_options(synchronize_session=False), rows)
            seen: set[int] = set()
            for ch in changes:
                inc = ch.incident
                values = {"updated_at": from_epoch(inc.updated_at), "severity": inc.severity,
                          "score": inc.score, "title": inc.title, "keys": list(inc.keys),
                          "keywords": list(inc.keywords), "sources": sorted(inc.sources),
                          "authors": len(inc.authors), "posts": len(inc.post_ids),
                          "reasons": [[r.code, [list(v) for v in r.values]] for r in inc.reasons],
                          "representative": inc.representative, "watches": list(inc.watch_names)}
                if categories and inc.id in categories:
                    values["category"] = categories[inc.id]
                if ch.opened and inc.id not in seen:
                    conn.execute(incidents.insert().values(id=inc.id, opened_at=from_epoch(inc.opened_at),
                                                           status=inc.status, **values))
                else:
                    # The status is the team's once the incident exists (acknowledged or resolved by a person);
                    # only ``quiet`` comes from the detector, through mark_quiet.
                    conn.execute(update(incidents).where(incidents.c.id == inc.id).values(**values))
                    if ch.reopened:  # flared up again; an incident the team resolved stays resolved
                        done = conn.execute(update(incidents).where(incidents.c.id == inc.id,
                                                                    incidents.c.status == "quiet")
                                            .values(status="open"))
                        if done.rowcount:
                            conn.execute(incident_events.insert().values(
                                incident_id=inc.id, at=now, actor="monitor", action="reflared",
                                note=f"再次升温：{len(ch.new_posts)} 条新负面内容 / flared up again"))
                seen.add(inc.id)
                if ch.new_posts:
                    conn.execute(incident_posts.insert(), [
                        {"incident_id": inc.id, "post_uid": pid, "author": inc.post_ids[pid][:255],
                         "source": pid.split(":", 1)[0],
                         "added_at": from_epoch(ch.at)} for pid in ch.new_posts])
                sig = ch.signal
                if sig is None:  # posts taken in between signals: no new point on the timeline
                    continue
                conn.execute(incident_points.insert().values(
                    incident_id=inc.id, at=from_epoch(sig.at), key=sig.key[:128], severity=sig.severity,
                    score=sig.score, negatives=sig.negatives, authors=sig.authors, posts=sig.posts,
                    expected=sig.expected))
            if then is not None:
                then(conn, list(dict.fromkeys(ch.incident.id for ch in changes)))

    def mark_quiet(self, incident_ids: Sequence[int], now: datetime) -> None:
        """Incidents whose surge is over (the team still resolves them)."""
        if incident_ids:
            with self._begin() as conn:
                conn.execute(update(incidents).where(incidents.c.id.in_(list(incident_ids)),
                                                     incidents.c.status == "open")
                             .values(status="quiet", updated_at=now))

    def unanalysed_posts(self, limit: int = 5000) -> list[Post]:
        """Stored posts not analysed yet (a crash between storing and analysing), oldest first."""
        query = (select(posts, sources.c.name.label("source_name")).join(sources, posts.c.source_id == sources.c.id)
                 .where(posts.c.analysed_at.is_(None)).order_by(posts.c.published_at, posts.c.id).limit(limit))
        with self._connect() as conn:
            return [_stored(r).to_post() for r in conn.execute(query)]

    def negative_history(self, since: datetime) -> dict[str, list[tuple[float, int, int, int]]]:
        """Per watch, per past hour since ``since``: (hour start, negative authors, posts, negatives) — to seed the
        surge detector's baselines after a restart."""
        hours: dict[str, dict[int, list[Any]]] = {}
        query = (select(posts.c.published_at, posts.c.author, posts.c.author_id, posts.c.watches, posts.c.sentiment)
                 .where(posts.c.published_at >= since, posts.c.analysed_at.is_not(None))
                 .order_by(posts.c.published_at))
        with self._connect() as conn:
            for r in conn.execute(query):
                hour = int(r.published_at.timestamp() // 3600)
                for watch in r.watches or []:
                    slot = hours.setdefault(watch, {}).setdefault(hour, [set(), 0, 0])
                    slot[1] += 1
                    if r.sentiment == "negative":
                        slot[0].add(r.author or r.author_id)
                        slot[2] += 1
        return {w: [(h * 3600.0, len(v[0]), v[1], v[2]) for h, v in sorted(by_hour.items())]
                for w, by_hour in hours.items()}

    def incident_status(self, incident_id: int) -> str | None:
        """An incident's status (``open``, ``quiet``, ``resolved``), or None when there is no such incident."""
        with self._connect() as conn:
            return conn.execute(select(incidents.c.status).where(incidents.c.id == incident_id)).scalar_one_or_none()

    def load_incidents(self, status: str | None = None, *, updated_since: datetime | None = None) -> list[Incident]:
        """Incidents (all, or with one status; only those updated since a time, if given) with their posts, oldest
        first."""
        from alerts.incidents import Incident
        from monitor.analysis.surge import Reason

        query = select(incidents).order_by(incidents.c.id)
        if status:
            query = query.where(incidents.c.status == status)
        if updated_since is not None:
            query = query.where(incidents.c.updated_at >= updated_since)
        out = []
        with self._connect() as conn:
            for r in conn.execute(query):
                members = conn.execute(select(incident_posts.c.post_uid, incident_posts.c.author)
                                       .where(incident_posts.c.incident_id == r.id)
                                       .order_by(incident_posts.c.added_at, incident_posts.c.post_uid)).all()
                inc = Incident(r.id, r.opened_at.timestamp(), r.updated_at.timestamp(), r.severity, r.score,
                               list(r.keys), r.title, list(r.keywords or []),
                               {m.post_uid: m.author for m in members}, set(r.sources or []),
                               tuple(Reason(c, tuple((k, v) for k, v in vals)) for c, vals in r.reasons or []),
                               r.representative, r.status)
                out.append(inc)
        return out

    # -- internals -----------------------------------------------------------------------------------------------
    def _upsert_posts(self, conn: Connection, source_id: int, batch: Sequence[Post],
                      now: datetime) -> tuple[list[Post], int]:
        unique: dict[str, Post] = {}
        for p in batch:  # a feed that lists one id twice keeps its first occurrence
            unique.setdefault(p.native_id, p)
        if not unique:
            return [], 0
        existing: dict[str, str] = {}
        ids = list(unique)
        for i in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            rows = conn.execute(select(posts.c.native_id, posts.c.content_hash).where(
                posts.c.source_id == source_id, posts.c.native_id.in_(ids[i:i + 500])))
            existing.update({r.native_id: r.content_hash for r in rows})
        fresh = [p for nid, p in unique.items() if nid not in existing]
        edited = [p for nid, p in unique.items() if nid in existing and existing[nid] != p.content_hash]
        if fresh and conn.dialect.name == "sqlite":
            _insert_posts_sqlite(conn, source_id, fresh)
        elif fresh:
            stmt = self._insert(posts).on_conflict_do_nothing(index_elements=["source_id", "native_id"])
            conn.execute(stmt, [_post_row(source_id, p) for p in fresh])
        for p in edited:  # an edited post (a complaint's status moving to 已完成) keeps its id and first fetch time
            conn.execute(update(posts).where(posts.c.source_id == source_id, posts.c.native_id == p.native_id)
                         .values(title=p.title, text=p.text, url=p.url, content_hash=p.content_hash,
                                 reposts=p.reposts, comments=p.comments, likes=p.likes, extra=p.extra or None,
                                 updated_at=now))
        return fresh, len(edited)

    def _source_id(self, conn: Connection, name: str) -> int:
        sid = conn.execute(select(sources.c.id).where(sources.c.name == name)).scalar()
        if sid is None:
            raise StorageError(f"source {name!r} is not in the database; it must be synced from the config first")
        return int(sid)

    def _begin(self) -> Any:
        try:
            return self.engine.begin()
        except OperationalError as exc:
            raise StorageError(f"cannot open the database ({exc.orig}); check database.url and that it is up") from exc

    def _connect(self) -> Any:
        try:
            return self.engine.connect()
        except OperationalError as exc:
            raise StorageError(f"cannot open the database ({exc.orig}); check database.url and that it is up") from exc


def posts_by_uid(conn: Connection, uids: Sequence[str], *columns: Any) -> list[Any]:
    """The stored posts with these ids (``source:native_id``), in no particular order: each row has ``columns``
    (default: every column of posts) plus ``native_id`` and ``source_name``. One query per source and 500 ids,
    so each uses the (source, native id) index and stays under SQLite's bound-parameter limit."""
    by_source: dict[str, list[str]] = {}
    for uid in uids:
        source, _, native = uid.partition(":")
        by_source.setdefault(source, []).append(native)
    wanted = list(columns) or [posts]
    if columns and posts.c.native_id not in columns:
        wanted.append(posts.c.native_id)
    found: list[Any] = []
    for source, natives in by_source.items():
        for i in range(0, len(natives), 500):
            found += conn.execute(select(*wanted, sources.c.name.label("source_name"))
                                  .join(sources, posts.c.source_id == sources.c.id)
                                  .where(sources.c.name == source, posts.c.native_id.in_(natives[i:i + 500]))).all()
    return found


def _stored(r: Any) -> StoredPost:
    """A StoredPost from a posts row joined with its source's name (``source_name``)."""
    return StoredPost(r.id, r.source_name, r.native_id, r.title, r.text, r.url, r.author, r.author_id,
                      r.published_at, r.fetched_at, r.reposts, r.comments, r.likes, r.content_hash,
                      dict(r.extra or {}))


def _post_row(source_id: int, p: Post) -> dict[str, Any]:
    return {
        "source_id": source_id, "native_id": p.native_id, "url": p.url, "title": p.title, "text": p.text,
        "author": p.author, "author_id": p.author_id, "published_at": p.published_at, "fetched_at": p.fetched_at,
        "reposts": p.reposts, "comments": p.comments, "likes": p.likes, "content_hash": p.content_hash,
        "extra": p.extra or None,
    }


#: Columns a new post fills, in the order of :data:`_INSERT_POSTS_SQL`'s placeholders.
_POST_COLUMNS = ("source_id", "native_id", "url", "title", "text", "author", "author_id", "published_at",
                 "fetched_at", "reposts", "comments", "likes", "content_hash", "extra")
# ON CONFLICT ... DO NOTHING (not INSERT OR IGNORE, which would also swallow a NOT NULL violation).
_INSERT_POSTS_SQL = (f"INSERT INTO posts ({', '.join(_POST_COLUMNS)}) VALUES ({', '.join('?' * len(_POST_COLUMNS))})"
                     " ON CONFLICT (source_id, native_id) DO NOTHING")


def _insert_posts_sqlite(conn: Connection, source_id: int, fresh: Sequence[Post]) -> None:
    """New posts as one DBAPI executemany of plain tuples (SQLite), like :func:`_annotate_sqlite`: the same rows
    the generic insert writes (the columns' own bind processors encode times and JSON), at a fraction of the cost."""
    dialect = conn.dialect
    when = posts.c.published_at.type.dialect_impl(dialect).bind_processor(dialect)
    to_json = posts.c.extra.type.dialect_impl(dialect).bind_processor(dialect)
    no_extra = to_json(None) if to_json else None  # most posts: encoded once
    # SQLAlchemy's SQLite DATETIME writes "YYYY-MM-DD HH:MM:SS.ffffff", which isoformat writes at a fraction of the
    # cost (the column's processor was half the time of an insert); used only while it gives the very same text.
    stamp: Callable[[Any], Any] | None = when
    if when is not None and fresh and _sqlite_stamp(fresh[0].published_at) == when(fresh[0].published_at):
        stamp = _sqlite_stamp
    fetched: dict[datetime, Any] = {}  # a poll's posts share one fetch time
    rows = []
    for p in fresh:
        at = fetched.get(p.fetched_at)
        if at is None:
            at = fetched[p.fetched_at] = when(p.fetched_at) if when else p.fetched_at
        extra = p.extra
        rows.append((source_id, p.native_id, p.url, p.title, p.text, p.author, p.author_id,
                     stamp(p.published_at) if stamp else p.published_at, at, p.reposts, p.comments, p.likes,
                     p.content_hash, (to_json(extra) if to_json else extra) if extra else no_extra))
    conn.exec_driver_sql(_INSERT_POSTS_SQL, rows)


def _sqlite_stamp(value: datetime) -> str:
    """An aware time as the posts table stores it on SQLite: naive UTC text (``UTCDateTime`` then SQLite's DATETIME
    bind processor); a naive time is refused as ``UTCDateTime`` refuses it."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to the database; monitor stores aware UTC times only")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


#: Columns an annotation sets, in the order of :data:`_ANNOTATE_SQL`'s placeholders.
_ANNOTATION_COLUMNS = ("negative", "sentiment", "watches", "topic", "dup_of", "category", "cues", "analysed_at")
_ANNOTATE_SQL = (f"UPDATE posts SET {', '.join(f'{c} = ?' for c in _ANNOTATION_COLUMNS)} "
                 "WHERE source_id = ? AND native_id = ?")


def _annotate_sqlite(conn: Connection, ids: dict[str, int], notes: Sequence[Annotation], now: datetime) -> None:
    """Annotations as one DBAPI executemany of plain tuples (SQLite): SQLAlchemy's per-row parameter processing
    cost more than SQLite's updates. Values go through the columns' own bind processors, so they are stored
    exactly as the generic path stores them; JSON lists repeat (watches, cues) and are encoded once each."""
    dialect = conn.dialect
    procs = {c: posts.c[c].type.dialect_impl(dialect).bind_processor(dialect)
             for c in ("watches", "cues", "analysed_at")}
    to_json, when = procs["watches"], procs["analysed_at"]
    cues_json = procs["cues"]
    stamp = when(now) if when else now
    encoded: dict[tuple[str, ...], Any] = {}
    encoded_cues: dict[tuple[str, ...], Any] = {(): cues_json(None) if cues_json else None}
    rows = []
    for n in notes:
        source, native = n.uid.split(":", 1)
        sid = ids.get(source)
        if sid is None:
            continue
        watches = encoded.get(n.watches)
        if watches is None:
            watches = encoded[n.watches] = to_json(list(n.watches)) if to_json else list(n.watches)
        cues = encoded_cues.get(n.cues)
        if cues is None:
            cues = encoded_cues[n.cues] = cues_json(list(n.cues)) if cues_json else list(n.cues)
        rows.append((n.negative, n.sentiment, watches, n.topic, n.dup_of, n.category, cues, stamp, sid, native))
    if rows:
        conn.exec_driver_sql(_ANNOTATE_SQL, rows)
