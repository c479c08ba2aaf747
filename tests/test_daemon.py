"""The daemon end to end on loopback: scheduling, failure isolation, backoff, live reload."""

from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from pathlib import Path

import pytest

from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.db.store import FAILING, OK
from monitor.runner import RunOutcome
from tests.loopback import LoopbackServer, Response


def rss(items: list[tuple[str, str]]) -> bytes:
    """A small RSS 2.0 feed with (guid, title) items."""
    body = "".join(f"<item><guid isPermaLink='false'>{g}</guid><title>{t}</title><description>{t} 正文</description>"
                   f"<pubDate>Fri, 20 Nov 2026 08:00:00 +0800</pubDate></item>" for g, t in items)
    return f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>{body}</channel></rss>" \
        .encode()


def write_config(path: Path, server: LoopbackServer, names: list[str], db: Path, extra: str = "") -> None:
    """A config with one rss source per name, each at /<name>.xml on the loopback server."""
    lines = [f"database: {{url: 'sqlite:///{db}'}}", "http: {per_host_interval: 0, retries: 0, timeout: 3s}",
             "sources:"]
    lines += [f"  - {{name: {n}, type: rss, url: '{server.url('/' + n + '.xml')}', interval: 30s}}" for n in names]
    path.write_text("\n".join(lines) + "\n" + extra, encoding="utf-8")


async def next_outcomes(daemon: Daemon, count: int, timeout: float = 15) -> dict[str, RunOutcome]:
    """Wait for ``count`` poll outcomes and return them by source (the last one per source)."""
    assert daemon.outcomes is not None
    got: dict[str, RunOutcome] = {}
    for _ in range(count):
        outcome = await asyncio.wait_for(daemon.outcomes.get(), timeout)
        got[outcome.source] = outcome
    return got


@pytest.fixture
def feeds(server: LoopbackServer) -> LoopbackServer:
    """A server with robots.txt absent and two feeds: good.xml and a broken.xml answering 500."""
    server.route("/robots.txt", Response(404))
    feed = rss([("1", "第一条"), ("2", "第二条")])
    server.route("/good.xml", Response(200, feed, {"Content-Type": "application/xml"}))
    server.route("/broken.xml", Response(500, b"oops"))
    return server


def start(config_path: Path) -> Daemon:
    """A daemon on the config file, polling new sources at once, with its outcomes observable."""
    daemon = Daemon(load_config(config_path), first_run_spread=0)
    daemon.outcomes = asyncio.Queue()
    return daemon


def test_one_broken_source_never_stops_another(feeds: LoopbackServer, tmp_path: Path) -> None:
    """The good feed is stored while the broken one is marked failing with its reason; both keep their jobs."""
    cfg = tmp_path / "config.yaml"
    write_config(cfg, feeds, ["good", "broken"], tmp_path / "m.db")

    async def scenario() -> None:
        daemon = start(cfg)
        await daemon.start()
        try:
            out = await next_outcomes(daemon, 2)
            assert out["good"].status == OK and out["good"].new == 2
            assert out["broken"].status == FAILING and "HTTP 500" in (out["broken"].error or "")
            assert daemon.scheduler is not None
            assert {j.id for j in daemon.scheduler.get_jobs()} >= {"good", "broken"}
            health = {h.name: h for h in daemon.store.health()}
            assert health["broken"].consecutive_failures == 1 and "500" in (health["broken"].last_error or "")
            # It recovers by itself once the site is fixed.
            feeds.route("/broken.xml", Response(200, rss([("9", "修好了")])))
            again = await daemon.runner.run(daemon.sources["broken"], force=True)
            assert again.status == OK and again.new == 1
            assert daemon.store.source_state("broken").consecutive_failures == 0
        finally:
            await daemon.shutdown()

    asyncio.run(scenario())


def test_failing_source_backs_off(feeds: LoopbackServer, tmp_path: Path) -> None:
    """After repeated failures the next attempt is pushed back exponentially and earlier polls are skipped."""
    cfg = tmp_path / "config.yaml"
    write_config(cfg, feeds, ["broken"], tmp_path / "m.db")

    async def scenario() -> None:
        daemon = start(cfg)
        await daemon.start()
        try:
            await next_outcomes(daemon, 1)
            src = daemon.sources["broken"]
            second = await daemon.runner.run(src, force=True)
            assert second.status == FAILING
            state = daemon.store.source_state("broken")
            assert state.next_attempt_at is not None
            wait = (state.next_attempt_at - daemon.clock.now()).total_seconds()
            assert 30 < wait <= 60  # interval x 2 after the second failure (minus a little drift allowance)
            hits = len(feeds.hits("/broken.xml"))
            skipped = await daemon.runner.run(src)
            assert skipped.status == "skipped" and len(feeds.hits("/broken.xml")) == hits
        finally:
            await daemon.shutdown()

    asyncio.run(scenario())


def test_reload_adds_changes_and_removes_sources(feeds: LoopbackServer, tmp_path: Path) -> None:
    """Editing the file updates the scheduler in place; an invalid edit keeps the running config."""
    cfg = tmp_path / "config.yaml"
    write_config(cfg, feeds, ["good"], tmp_path / "m.db")
    feeds.route("/other.xml", Response(200, rss([("a", "新来源")])))

    async def scenario() -> None:
        daemon = start(cfg)
        await daemon.start()
        try:
            await next_outcomes(daemon, 1)
            assert daemon.scheduler is not None
            write_config(cfg, feeds, ["good", "other"], tmp_path / "m.db")
            assert await daemon.reload()
            out = await next_outcomes(daemon, 1)
            assert out["other"].new == 1
            assert daemon.scheduler.get_job("other") is not None

            # An invalid edit: the running config stays, the error is logged with its path.
            cfg.write_text(cfg.read_text() + "  - {name: bad, type: rss, url: 'not a url', interval: 5s}\n")
            assert not await daemon.reload()
            assert set(daemon.sources) == {"good", "other"}

            write_config(cfg, feeds, ["other"], tmp_path / "m.db")
            assert await daemon.reload()
            assert daemon.scheduler.get_job("good") is None and set(daemon.sources) == {"other"}
            assert [h.name for h in daemon.store.health()] == ["other"]
        finally:
            await daemon.shutdown()

    asyncio.run(scenario())


def test_invalid_reload_is_logged_with_paths(feeds: LoopbackServer, tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    """A rejected reload logs every problem with its path and a hint."""
    cfg = tmp_path / "config.yaml"
    write_config(cfg, feeds, ["good"], tmp_path / "m.db")

    async def scenario() -> None:
        daemon = start(cfg)
        await daemon.start()
        try:
            cfg.write_text(cfg.read_text().replace("interval: 30s", "interval: 5s"))
            with caplog.at_level(logging.ERROR, logger="monitor.daemon"):
                assert not await daemon.reload()
        finally:
            await daemon.shutdown()

    asyncio.run(scenario())
    [record] = [r for r in caplog.records if r.getMessage() == "config.rejected"]
    problems = record.fields["problems"]  # type: ignore[attr-defined]
    assert any(p.startswith("sources[0].interval: must be at least 30s") for p in problems)


def test_file_change_triggers_reload(feeds: LoopbackServer, tmp_path: Path) -> None:
    """Saving the file is enough: the watcher notices the new mtime and reloads."""
    cfg = tmp_path / "config.yaml"
    write_config(cfg, feeds, ["good"], tmp_path / "m.db")
    feeds.route("/other.xml", Response(200, rss([("a", "新来源")])))

    async def scenario() -> None:
        daemon = start(cfg)
        await daemon.start()
        try:
            await next_outcomes(daemon, 1)
            write_config(cfg, feeds, ["good", "other"], tmp_path / "m.db")
            out = await next_outcomes(daemon, 1, timeout=20)
            assert out["other"].status == OK
        finally:
            await daemon.shutdown()

    asyncio.run(scenario())


def test_changed_source_is_rescheduled_with_new_settings(feeds: LoopbackServer, tmp_path: Path) -> None:
    """Changing a source's interval replaces its job's trigger."""
    cfg = tmp_path / "config.yaml"
    write_config(cfg, feeds, ["good"], tmp_path / "m.db")

    async def scenario() -> None:
        daemon = start(cfg)
        await daemon.start()
        try:
            cfg.write_text(cfg.read_text().replace("interval: 30s", "interval: 2m"))
            assert await daemon.reload()
            assert daemon.scheduler is not None
            job = daemon.scheduler.get_job("good")
            assert job is not None and job.trigger.interval == timedelta(minutes=2)
            assert daemon.sources["good"].config.interval == 120
        finally:
            await daemon.shutdown()

    asyncio.run(scenario())
