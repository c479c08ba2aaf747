"""The Store: every read and write of sources, posts and runs, each write one transaction.

Synchronous on purpose: the daemon calls it from one worker thread, which also serialises SQLite writes.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.engine import Connection
from sqlalchemy.exc import OperationalError

from monitor.db.schema import posts, source_runs, sources
from monitor.errors import StorageError
from monitor.normalize import Post

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
                     limit: int = 50) -> list[StoredPost]:
        """Newest posts first (by publication time)."""
        query = (select(posts, sources.c.name.label("source_name")).join(sources, posts.c.source_id == sources.c.id)
                 .order_by(posts.c.published_at.desc(), posts.c.id.desc()).limit(limit))
        if source:
            query = query.where(sources.c.name == source)
        if since:
            query = query.where(posts.c.published_at >= since)
        with self._connect() as conn:
            return [StoredPost(r.id, r.source_name, r.native_id, r.title, r.text, r.url, r.author, r.author_id,
                               r.published_at, r.fetched_at, r.reposts, r.comments, r.likes, r.content_hash,
                               dict(r.extra or {})) for r in conn.execute(query)]

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
        if fresh:
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


def _post_row(source_id: int, p: Post) -> dict[str, Any]:
    return {
        "source_id": source_id, "native_id": p.native_id, "url": p.url, "title": p.title, "text": p.text,
        "author": p.author, "author_id": p.author_id, "published_at": p.published_at, "fetched_at": p.fetched_at,
        "reposts": p.reposts, "comments": p.comments, "likes": p.likes, "content_hash": p.content_hash,
        "extra": p.extra or None,
    }
