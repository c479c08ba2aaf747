"""Run one poll of one source: fetch -> parse -> normalise -> store, and record the source's health.

A failing source is data, not a crash: every run ends as ok or failed(reason), the log says once when a source goes
bad and once when it recovers, and a failing source is retried with exponential backoff until it recovers by itself.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass, field
from dataclasses import fields as dataclass_fields
from datetime import datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from monitor.clock import Clock
from monitor.db.store import BLOCKED, FAILING, LAYOUT, OK, Store
from monitor.errors import BlockedError, BlockedPageError, FetchError, LayoutError, ParseError, StorageError
from monitor.http import HttpClient
from monitor.logs import event
from monitor.metrics import record_poll
from monitor.normalize import Post, normalize
from monitor.source import Page, RawPost, Source

log = logging.getLogger("monitor.runner")
T = TypeVar("T")

#: A failing source is retried after interval x 2^(failures-1), at most this long.
MAX_BACKOFF = 3600.0


@dataclass
class RunOutcome:
    """What one poll did."""

    source: str
    status: str  # ok | failing | blocked | skipped
    new: int = 0
    updated: int = 0
    pages: int = 0
    error: str | None = None
    problems: list[str] = field(default_factory=list)
    new_posts: list[Post] = field(default_factory=list)


def parse_pages(source: Source, pages: list[Page], tz: ZoneInfo) -> tuple[list[Post], list[str]]:
    """Parse and normalise every page; raise the first ParseError only if no page could be read at all.

    A post seen on several pages of one poll (a list page, then its detail page) is merged: later non-empty fields
    fill in or replace earlier ones, so a detail page can add the full text to a list item.
    """
    raws: dict[str, RawPost] = {}
    problems: list[str] = []
    failures: list[ParseError] = []
    for page in pages:
        try:
            result = source.parse(page)
        except ParseError as exc:
            failures.append(exc)
            continue
        problems.extend(result.problems)
        for raw in result.posts:
            key = str(raw.native_id).strip()
            raws[key] = _merge(raws[key], raw) if key in raws else raw
    if failures and len(failures) == len(pages):
        raise failures[0]
    problems.extend(str(f) for f in failures)
    posts: list[Post] = []
    for raw in raws.values():
        try:
            posts.append(normalize(raw, source=source.name, fetched_at=pages[0].fetched_at, tz=tz))
        except ValueError as exc:
            problems.append(f"skipped a post: {exc}")
    return posts, problems


def _merge(first: RawPost, later: RawPost) -> RawPost:
    merged = RawPost(native_id=first.native_id)
    for f in dataclass_fields(RawPost):
        if f.name == "extra":
            continue
        value = getattr(later, f.name)
        setattr(merged, f.name, value if value not in (None, "") else getattr(first, f.name))
    merged.extra = {**first.extra, **later.extra}
    return merged


class SourceRunner:
    """Polls sources through the shared client and stores results through the store (in a worker thread)."""

    def __init__(self, store: Store, http: HttpClient, clock: Clock, default_tz: str, worker: Executor) -> None:
        self.store = store
        self.http = http
        self.clock = clock
        self.default_tz = default_tz
        self.worker = worker

    async def _in_worker(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.worker, lambda: fn(*args, **kwargs))

    async def run(self, source: Source, *, force: bool = False) -> RunOutcome:
        """Poll ``source`` once, unless it is backing off (``force`` polls anyway)."""
        name = source.name
        started = self.clock.now()
        state = await self._in_worker(self.store.source_state, name)
        if not force and state.next_attempt_at and started < state.next_attempt_at:
            return RunOutcome(name, "skipped")
        tz = ZoneInfo(source.config.timezone or self.default_tz)
        t0 = time.perf_counter()  # wall time for the poll-duration histogram (the clock may be simulated)
        try:
            fetched = await source.fetch(self.http, state.cursor)
            posts, problems = await self._in_worker(parse_pages, source, fetched.pages, tz)
        except asyncio.CancelledError:
            raise
        except (BlockedError, BlockedPageError) as exc:
            return await self._failed(source, state.status, state.consecutive_failures, BLOCKED, str(exc), started,
                                      getattr(exc, "retry_after", None), t0)
        except LayoutError as exc:
            return await self._failed(source, state.status, state.consecutive_failures, LAYOUT, str(exc), started,
                                      None, t0)
        except (FetchError, ParseError) as exc:
            return await self._failed(source, state.status, state.consecutive_failures, FAILING, str(exc), started,
                                      getattr(exc, "retry_after", None), t0)
        except Exception as exc:  # a bug in a source kind: this source fails, the daemon goes on
            log.exception("source.crashed", extra={"fields": {"source": name, "kind": source.kind}})
            return await self._failed(source, state.status, state.consecutive_failures, FAILING,
                                      f"internal error in source kind {source.kind!r}: {exc!r}; please report it",
                                      started, None, t0)
        problems = fetched.problems + problems
        problem = "; ".join(problems[:3]) if problems else None
        summary = await self._in_worker(self.store.commit_run, name, posts, fetched.cursor, started_at=started,
                                        finished_at=self.clock.now(), pages=len(fetched.pages), problem=problem)
        record_poll(name, OK, time.perf_counter() - t0, summary.new)
        if state.status in (FAILING, BLOCKED, LAYOUT):
            event(log, "source.recovered", logging.INFO, source=name, after_failures=state.consecutive_failures)
        fields: dict[str, Any] = {"source": name, "new": summary.new, "updated": summary.updated,
                                  "pages": len(fetched.pages),
                                  "ms": int((self.clock.now() - started).total_seconds() * 1000)}
        if problems:
            fields["problems"] = problem
        event(log, "source.polled", logging.INFO if summary.new or problems else logging.DEBUG, **fields)
        return RunOutcome(name, OK, summary.new, summary.updated, len(fetched.pages), None, problems,
                          summary.new_posts)

    async def _failed(self, source: Source, previous: str, failures: int, status: str, error: str,
                      started: datetime, retry_after: float | None, t0: float | None = None) -> RunOutcome:
        finished = self.clock.now()
        if t0 is not None:
            record_poll(source.name, status, time.perf_counter() - t0)
        backoff = min(source.config.interval * (2 ** failures), MAX_BACKOFF)
        # The first failure waits one ordinary interval; later ones back off. Slightly early so the job that
        # fires at the backoff time is not skipped by a few milliseconds of drift.
        wait = max(backoff, retry_after or 0.0) - min(5.0, source.config.interval / 10)
        next_attempt = finished + timedelta(seconds=wait) if failures >= 1 or retry_after else None
        try:
            count = await self._in_worker(self.store.record_failure, source.name, error, status=status,
                                          started_at=started, finished_at=finished, next_attempt_at=next_attempt)
        except StorageError as exc:
            event(log, "store.failed", logging.ERROR, source=source.name, error=str(exc))
            count = failures + 1
        fields = {"source": source.name, "status": status, "failures": count, "error": error}
        if next_attempt:
            fields["next_attempt"] = next_attempt.isoformat(timespec="seconds")
        # Say it once when a source goes bad; repeats are debug-level so a dead site does not flood the log.
        level = logging.WARNING if previous not in (FAILING, BLOCKED, LAYOUT) else logging.DEBUG
        event(log, "source.failed", level, **fields)
        return RunOutcome(source.name, status, error=error)
