"""The daemon: one APScheduler job per source, live config reload, clean shutdown.

Jobs run on one asyncio loop (fetches are I/O); parsing and database writes run on one worker thread, which keeps
the loop free for timers and serialises SQLite writes. On SIGTERM/SIGINT the scheduler stops launching runs,
in-flight fetches are cancelled, and any write already handed to the worker finishes before exit; a run's posts
and cursor are one transaction, so nothing is ever half-stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from pathlib import Path
from typing import Any

from apscheduler.events import EVENT_JOB_MAX_INSTANCES, JobExecutionEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler
from apscheduler.triggers.interval import IntervalTrigger

from monitor.clock import Clock, SystemClock
from monitor.config import Config, load_config, source_digest
from monitor.db import Store, make_engine, upgrade
from monitor.errors import ConfigError
from monitor.http import HttpClient
from monitor.logs import event, setup_logging
from monitor.registry import get_kind
from monitor.runner import RunOutcome, SourceRunner
from monitor.source import Source

log = logging.getLogger("monitor.daemon")

#: How often the config file is checked for edits (seconds).
WATCH_INTERVAL = 2.0
#: The run log (source_runs) backs health views; older rows are pruned.
RUN_LOG_DAYS = 30


class Daemon:
    """Owns the scheduler, the shared HTTP client, the store and the runner."""

    def __init__(self, config: Config, *, clock: Clock | None = None, store: Store | None = None,
                 first_run_spread: float = 10.0) -> None:
        self.config = config
        self.clock = clock or SystemClock()
        self.store = store or Store(make_engine(config.database_url()))
        self.http = HttpClient(config.http, clock=self.clock)
        self.worker = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monitor-worker")
        self.runner = SourceRunner(self.store, self.http, self.clock, config.timezone, self.worker)
        self.first_run_spread = first_run_spread
        self.sources: dict[str, Source] = {}
        self.digests: dict[str, str] = {}
        self.scheduler: AsyncIOScheduler | None = None
        self.outcomes: asyncio.Queue[RunOutcome] | None = None  # tests and the demo watch runs through this
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._mtime: int | None = None
        self.analysis: Any = None  # AnalysisStage, built on the worker thread after start (the model loads there)
        self.analysis_ready = asyncio.Event()

    # -- life cycle ----------------------------------------------------------------------------------------------
    async def run(self) -> None:
        """Start, poll until asked to stop, then shut down cleanly."""
        await self.start()
        try:
            await self._stop.wait()
        finally:
            await self.shutdown()

    async def start(self) -> None:
        """Migrate the database, sync sources, schedule jobs and install signal handlers."""
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.worker, upgrade, self.store.engine)
        self.scheduler = AsyncIOScheduler(event_loop=loop, timezone="UTC")
        self.scheduler.add_listener(self._on_skipped, EVENT_JOB_MAX_INSTANCES)
        await self._apply_sources(self.config)
        self.scheduler.start()
        # The sentiment model loads on the worker thread while the first fetches are already under way.
        self._spawn(self._start_analysis(self.config))
        self._mtime = _mtime(self.config.path)
        if self.config.path is not None:
            self.scheduler.add_job(self._watch_config, IntervalTrigger(seconds=WATCH_INTERVAL), id="__config_watch__",
                                   max_instances=1, coalesce=True)
        self.scheduler.add_job(self._maintain, IntervalTrigger(hours=6), id="__maintenance__", max_instances=1,
                               coalesce=True, next_run_time=self.clock.now() + timedelta(minutes=1))
        for sig, handler in ((signal.SIGTERM, self.stop), (signal.SIGINT, self.stop),
                             (signal.SIGHUP, lambda: self._spawn(self.reload()))):
            with contextlib.suppress(NotImplementedError, RuntimeError):  # not the main thread (tests), not POSIX
                loop.add_signal_handler(sig, handler)
        event(log, "daemon.started", sources=len(self.sources), database=self.store.engine.dialect.name,
              config=str(self.config.path or ""))

    def stop(self) -> None:
        """Ask the daemon to stop (signal-safe)."""
        if not self._stop.is_set():
            event(log, "daemon.stopping")
        self._stop.set()

    async def shutdown(self) -> None:
        """Stop scheduling, cancel fetches, let handed-over writes finish, close connections."""
        if self.scheduler is not None and self.scheduler.running:
            self.scheduler.shutdown(wait=False)
        current = asyncio.current_task()
        pending = [t for t in asyncio.all_tasks() if t is not current and getattr(t, "_monitor_job", False)]
        pending += [t for t in self._tasks if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)
        # Cancelling an await does not stop the worker thread: a commit in progress completes here.
        await asyncio.get_running_loop().run_in_executor(None, lambda: self.worker.shutdown(wait=True))
        await self.http.aclose()
        self.store.engine.dispose()
        event(log, "daemon.stopped")

    # -- jobs ----------------------------------------------------------------------------------------------------
    async def _poll(self, name: str) -> None:
        task = asyncio.current_task()
        if task is not None:
            task._monitor_job = True  # type: ignore[attr-defined]
        source = self.sources.get(name)
        if source is None or self._stop.is_set():
            return
        try:
            outcome = await self.runner.run(source)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # the store is down, say: log it, keep the job for the next interval
            event(log, "source.run_error", logging.ERROR, source=name, error=repr(exc))
            return
        if outcome.new_posts and self.analysis is not None:
            try:
                await asyncio.get_running_loop().run_in_executor(
                    self.worker, self.analysis.process, outcome.new_posts, self.clock.now())
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the posts stay unanalysed and are caught up at the next start
                event(log, "analysis.failed", logging.ERROR, source=name, error=repr(exc))
        if self.outcomes is not None:
            self.outcomes.put_nowait(outcome)

    async def _start_analysis(self, config: Config) -> None:
        def build() -> None:
            from monitor.analysis.stage import AnalysisStage

            stage = AnalysisStage(config, self.store)
            stage.start(self.clock.now())
            self.analysis = stage  # set on the worker thread: every later commit is analysed by this stage

        try:
            await asyncio.get_running_loop().run_in_executor(self.worker, build)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            event(log, "analysis.unavailable", logging.ERROR, error=repr(exc),
                  hint="posts are still collected and will be analysed after a restart")
        finally:
            self.analysis_ready.set()

    async def _maintain(self) -> None:
        cutoff = self.clock.now() - timedelta(days=RUN_LOG_DAYS)
        pruned = await asyncio.get_running_loop().run_in_executor(self.worker, self.store.prune_runs, cutoff)
        if pruned:
            event(log, "maintenance.pruned_runs", rows=pruned, older_than_days=RUN_LOG_DAYS)

    def _on_skipped(self, ev: JobExecutionEvent) -> None:
        event(log, "source.still_running", logging.INFO, source=ev.job_id,
              hint="the previous poll has not finished; this run was skipped (never two runs of one source at once)")

    def _schedule(self, src: Source) -> None:
        assert self.scheduler is not None
        cfg = src.config
        # New and edited sources poll soon; spreading first runs avoids a thundering herd at start-up.
        delay = random.uniform(0, min(self.first_run_spread, cfg.effective_jitter))
        self.scheduler.add_job(
            self._poll, IntervalTrigger(seconds=cfg.interval, jitter=cfg.effective_jitter or None), args=[cfg.name],
            id=cfg.name, name=f"poll {cfg.name}", replace_existing=True, max_instances=1, coalesce=True,
            misfire_grace_time=max(1, int(cfg.interval)),
            next_run_time=self.clock.now() + timedelta(seconds=delay))

    async def _apply_sources(self, config: Config) -> dict[str, list[str]]:
        wanted = {s.name: s for s in config.sources if s.enabled}
        digests = {n: source_digest(s) for n, s in wanted.items()}
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self.worker, lambda: self.store.sync_sources(
            [(n, s.type, digests[n]) for n, s in wanted.items()], self.clock.now()))
        added = [n for n in wanted if n not in self.sources]
        removed = [n for n in self.sources if n not in wanted]
        changed = [n for n in wanted if n in self.sources and self.digests.get(n) != digests[n]]
        assert self.scheduler is not None
        for name in removed:
            if self.scheduler.get_job(name):
                self.scheduler.remove_job(name)
            del self.sources[name]
        for name in added + changed:
            self.sources[name] = get_kind(wanted[name].type)(wanted[name])
            self._schedule(self.sources[name])
        self.digests = digests
        return {"added": added, "removed": removed, "changed": changed}

    # -- reload --------------------------------------------------------------------------------------------------
    async def reload(self) -> bool:
        """Re-read the config file; apply it if valid, else keep the running config and log every problem."""
        if self.config.path is None:
            return False
        loop = asyncio.get_running_loop()
        try:
            new = await loop.run_in_executor(None, load_config, self.config.path)
        except ConfigError as exc:
            event(log, "config.rejected", logging.ERROR, problems=exc.problems,
                  hint="the running config stays in force; fix the file and save it again")
            return False
        ignored = [k for k in ("database", "http") if getattr(new, k) != getattr(self.config, k)]
        if ignored:
            event(log, "config.restart_needed", logging.WARNING, sections=ignored,
                  hint="changes to these sections apply after a restart")
        setup_logging(new.log.level, new.log.format, new.secrets)
        old = self.config
        self.config = new.model_copy(update={"database": self.config.database, "http": self.config.http})
        self.config._path, self.config._secrets = new.path, new.secrets
        self.runner.default_tz = new.timezone
        changes = await self._apply_sources(new)
        if any(getattr(new, k) != getattr(old, k) for k in ("watches", "analysis", "detection")):
            self._spawn(self._start_analysis(self.config))
        event(log, "config.reloaded", logging.INFO, **{k: v for k, v in changes.items() if v})
        return True

    async def _watch_config(self) -> None:
        mtime = _mtime(self.config.path)
        if mtime is not None and mtime != self._mtime:
            self._mtime = mtime
            await self.reload()

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path else None
    except OSError:
        return None


def run_daemon(config: Config) -> None:
    """Entry point of ``monitor run``."""
    asyncio.run(Daemon(config).run())
