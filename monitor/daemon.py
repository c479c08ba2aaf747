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
#: Seconds between runs of the incident-repeat and ticket-SLA timers.
TIMERS_INTERVAL = 60.0
#: Seconds after start before the web console is imported and served (the first polls go first).
WEB_START_DELAY = 5.0
#: Seconds shutdown waits for a message being sent to finish.
DELIVERY_GRACE = 5.0
#: The run log (source_runs) backs health views; older rows are pruned.
RUN_LOG_DAYS = 30


class Daemon:
    """Owns the scheduler, the shared HTTP client, the store and the runner."""

    def __init__(self, config: Config, *, clock: Clock | None = None, store: Store | None = None,
                 first_run_spread: float = 10.0, serve_web: bool = False) -> None:
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
        self.deliverer: Any = None  # alerts.delivery.Deliverer: sends what the outbox holds
        self._delivery_task: asyncio.Task[None] | None = None
        self._notify_http: Any = None
        # The web console (monitor/web) on this loop when ``serve_web`` and web.enabled: `monitor run` asks for it;
        # tests and embedders that build a Daemon opt in, so they never grab web.listen by surprise.
        self.serve_web = serve_web
        self.web_app: Any = None
        self.web_server: Any = None
        self.web_url: str | None = None
        self._web_task: asyncio.Task[None] | None = None
        self.web_ready = asyncio.Event()  # set once the console serves (or could not): tests wait on it
        self._web_socket: Any = None

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
        self._start_delivery()
        if self.serve_web and self.config.web.enabled:
            self._spawn(self._start_web())
        else:
            self.web_ready.set()
        self._mtime = _mtime(self.config.path)
        if self.config.path is not None:
            self.scheduler.add_job(self._watch_config, IntervalTrigger(seconds=WATCH_INTERVAL), id="__config_watch__",
                                   max_instances=1, coalesce=True)
        self.scheduler.add_job(self._maintain, IntervalTrigger(hours=6), id="__maintenance__", max_instances=1,
                               coalesce=True, next_run_time=self.clock.now() + timedelta(minutes=1))
        self.scheduler.add_job(self._timers, IntervalTrigger(seconds=TIMERS_INTERVAL), id="__timers__",
                               max_instances=1, coalesce=True)
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
        self._stop.set()
        await self._stop_web()
        if self._delivery_task is not None:
            # A message being sent finishes (and is marked sent) rather than being cut off and sent again later.
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(asyncio.shield(self._delivery_task), timeout=DELIVERY_GRACE)
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
        if self._notify_http is not None:
            await self._notify_http.aclose()
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
            if self.deliverer is not None:
                self.deliverer.wake.set()  # messages written with the analysis go out without waiting a tick
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

    def _start_delivery(self) -> None:
        import httpx

        from alerts.delivery import Deliverer, build_channels

        # A client of its own: sources' politeness limits (per-host pacing, robots.txt) must not delay alerts.
        self._notify_http = httpx.AsyncClient(follow_redirects=False, timeout=15.0,
                                              headers={"User-Agent": self.config.http.user_agent})
        loop = asyncio.get_running_loop()

        async def on_worker(fn: Any) -> Any:
            return await loop.run_in_executor(self.worker, fn)

        self.deliverer = Deliverer(self.store.engine, self.config, self.clock,
                                   build_channels(self.config, self._notify_http, self.clock), db=on_worker)
        self._delivery_task = asyncio.create_task(self.deliverer.run_forever(self._stop))
        self._tasks.add(self._delivery_task)
        self._delivery_task.add_done_callback(self._tasks.discard)

    async def _start_web(self) -> None:
        """Serve the console on this loop (uvicorn as a task); a refusal or a busy port is logged, polling goes on."""
        try:
            # FastAPI and the app's modules take about a second of CPU to import; even in a thread they hold the
            # GIL against the first polls. So the console comes up once the first polls are under way
            # (bench/startup.py: first request 1.4 s median, 2.2 s with the console imported at start).
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._stop.wait(), timeout=WEB_START_DELAY)
            await asyncio.get_running_loop().run_in_executor(None, _import_web)
            if not self._stop.is_set():
                self._serve_web()
        finally:
            self.web_ready.set()

    def _serve_web(self) -> None:
        from monitor.web.app import create_app
        from monitor.web.ops import EmbeddedServer, bind, refuse_reason, server_config, startup_warnings

        reason = refuse_reason(self.config)
        if reason:
            event(log, "web.refused", logging.ERROR, reason=reason, hint="monitoring runs; the console does not")
            return
        for warning in startup_warnings(self.config):
            event(log, "web.warning", logging.WARNING, warning=warning)
        web = self.config.web
        try:
            self._web_socket = bind(web.host, web.port)
        except OSError as exc:
            event(log, "web.listen_failed", logging.ERROR, listen=web.listen, error=str(exc),
                  hint="another process uses this port? change web.listen; monitoring runs without the console")
            return
        self.web_app = create_app(self.config, self.store.engine, clock=self.clock, runtime=self)
        self.web_server = EmbeddedServer(server_config(self.web_app))
        host, port = self._web_socket.getsockname()[:2]
        self.web_url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
        self._web_task = asyncio.create_task(self.web_server.serve(sockets=[self._web_socket]))
        event(log, "web.listening", url=self.web_url)

    async def _stop_web(self) -> None:
        """Stop accepting, let requests in progress finish (a few seconds at most), close the socket."""
        if self.web_server is not None and self._web_task is not None:
            self.web_server.should_exit = True
            with contextlib.suppress(asyncio.TimeoutError, asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._web_task, timeout=10)
            self._web_task = None
        if self._web_socket is not None:
            self._web_socket.close()
            self._web_socket = None

    def readiness(self) -> list[str]:
        """Problems that make the daemon not ready (for /readyz): the scheduler must be running."""
        problems = []
        if self.scheduler is None or not self.scheduler.running:
            problems.append("scheduler: not running")
        if self._stop.is_set():
            problems.append("daemon: shutting down")
        return problems

    async def _timers(self) -> None:
        """Once a minute: repeat reminders about open incidents, SLA reminders and escalations of tickets."""
        loop = asyncio.get_running_loop()
        now = self.clock.now()
        written = 0
        stage = self.analysis
        if stage is not None:
            written += await loop.run_in_executor(self.worker, stage.notifier.repeat_due, self.store.engine, now)
            if stage.queue is not None:
                written += await loop.run_in_executor(self.worker, stage.queue.check_sla, now)
        if written and self.deliverer is not None:
            self.deliverer.wake.set()

    async def _maintain(self) -> None:
        cutoff = self.clock.now() - timedelta(days=RUN_LOG_DAYS)
        pruned = await asyncio.get_running_loop().run_in_executor(self.worker, self.store.prune_runs, cutoff)
        if pruned:
            event(log, "maintenance.pruned_runs", rows=pruned, older_than_days=RUN_LOG_DAYS)
        # Retention of personal data (privacy.retention_*): on the worker thread, which serialises it with the
        # polls' writes; a failure is logged and tried again at the next run rather than stopping the daemon.
        from monitor.retention import purge

        try:
            purged = await asyncio.get_running_loop().run_in_executor(
                self.worker, purge, self.store.engine, self.config, self.clock.now())
        except Exception as exc:
            event(log, "maintenance.purge_failed", logging.ERROR, error=repr(exc))
        else:
            if purged:
                event(log, "maintenance.purged", **purged)

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
        elif any(getattr(new, k) != getattr(old, k) for k in ("channels", "alerts", "queue", "timezone")) \
                and self.analysis is not None:
            self.analysis.configure_alerts(self.config)
        if self.deliverer is not None and any(getattr(new, k) != getattr(old, k)
                                              for k in ("channels", "alerts", "queue")):
            from alerts.delivery import build_channels

            self.deliverer.config = self.config
            self.deliverer.channels = build_channels(self.config, self._notify_http, self.clock)
            self.deliverer.wake.set()
        if self.web_app is not None:  # new users and tokens apply at once (web.listen needs a restart)
            self.web_app.state.web.set_config(self.config)
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


def _import_web() -> None:
    import monitor.web.app
    import monitor.web.ops  # noqa: F401


def _mtime(path: Path | None) -> int | None:
    try:
        return path.stat().st_mtime_ns if path else None
    except OSError:
        return None


def run_daemon(config: Config) -> None:
    """Entry point of ``monitor run``."""
    asyncio.run(Daemon(config, serve_web=True).run())
