"""Prometheus metrics and readiness: a daemon polling a loopback feed serves its console on its own loop, and
/metrics counts the poll; /readyz says 503 when the database is gone."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from monitor import metrics
from monitor.clock import ManualClock
from monitor.config import load_config, parse_config
from monitor.daemon import Daemon
from monitor.db import make_engine, upgrade
from monitor.web.app import create_app
from tests.loopback import LoopbackServer, Response
from tests.test_daemon import next_outcomes, rss, write_config
from tests.test_web_api import NOW


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by (name, sorted labels)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_daemon_serves_metrics_that_count_its_polls(server: LoopbackServer, tmp_path: Path) -> None:
    server.route("/robots.txt", Response(404))
    server.route("/good.xml", Response(200, rss([("1", "第一条"), ("2", "第二条")]),
                                       {"Content-Type": "application/xml"}))
    server.route("/broken.xml", Response(500, b"oops"))
    cfg = tmp_path / "config.yaml"
    port = _free_port()
    write_config(cfg, server, ["good", "broken"], tmp_path / "m.db", extra=f"web: {{listen: '127.0.0.1:{port}'}}\n")
    before = samples(metrics.render({}, {}).decode())

    async def scenario() -> None:
        daemon = Daemon(load_config(cfg), first_run_spread=0, serve_web=True)
        daemon.outcomes = asyncio.Queue()
        await daemon.start()
        try:
            await next_outcomes(daemon, 2)
            await asyncio.wait_for(daemon.web_ready.wait(), 30)
            assert daemon.web_url == f"http://127.0.0.1:{port}/"
            async with httpx.AsyncClient(base_url=daemon.web_url, timeout=10) as c:
                scraped = await c.get("/metrics")
                assert scraped.headers["content-type"].startswith("text/plain")
                got = samples(scraped.text)
                ready = await c.get("/readyz")
                assert ready.status_code == 200 and ready.json()["status"] == "ready"
                assert (await c.get("/healthz")).json() == {"status": "ok"}
                # No users: the API is locked, ops endpoints answer.
                assert (await c.get("/api/me")).json()["code"] == "no_users"
        finally:
            await daemon.shutdown()

        def delta(name: str, **labels: str) -> float:
            key = (name, tuple(sorted(labels.items())))
            return got.get(key, 0.0) - before.get(key, 0.0)

        assert delta("monitor_polls_total", source="good", status="ok") >= 1
        assert delta("monitor_polls_total", source="broken", status="failing") >= 1
        assert delta("monitor_posts_ingested_total", source="good") == 2
        assert delta("monitor_poll_seconds_count", source="good") >= 1
        assert got[("monitor_source_up", (("source", "good"),))] == 1.0
        assert got[("monitor_source_up", (("source", "broken"),))] == 0.0
        assert got[("monitor_outbox_backlog", (("status", "pending"),))] == 0.0
        # After shutdown the port is free again: the console stopped with the daemon.
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5)

    asyncio.run(scenario())


def test_readyz_is_503_when_the_database_is_gone(tmp_path: Path) -> None:
    config = parse_config("sources: []\n")
    engine = make_engine("postgresql+psycopg://postgres@127.0.0.1:1/none?connect_timeout=2")
    app = create_app(config, engine, clock=ManualClock(NOW))

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as c:
            r = await c.get("/readyz")
            assert r.status_code == 503 and r.json()["status"] == "unavailable"
            assert r.json()["problems"][0].startswith("database: ")
            assert (await c.get("/healthz")).status_code == 200, "the process itself is up"
            assert (await c.get("/metrics")).status_code == 200, "counters are served without the database"

    asyncio.run(scenario())
    engine.dispose()


def test_readyz_reports_the_runtime(tmp_path: Path) -> None:
    """Under `monitor run` the scheduler must be running too."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    engine = make_engine(url)
    upgrade(engine)

    class Stopped:
        def readiness(self) -> list[str]:
            return ["scheduler: not running"]

    app = create_app(parse_config("sources: []\n"), engine, runtime=Stopped())

    async def scenario() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as c:
            r = await c.get("/readyz")
            assert r.status_code == 503 and r.json()["problems"] == ["scheduler: not running"]

    asyncio.run(scenario())
    engine.dispose()


def test_counters_for_incidents_and_notifications() -> None:
    before = samples(metrics.render({}, {}).decode())
    metrics.record_incident_opened("orange")
    metrics.record_notification("ops", "sent")
    metrics.record_notification("ops", "failed")
    metrics.record_notification("ops", "failed")
    after = samples(metrics.render({"pending": 3, "failed": 1}, {"a": "ok", "b": "blocked"}).decode())

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return after.get(key, 0.0) - before.get(key, 0.0)

    assert delta("monitor_incidents_opened_total", severity="orange") == 1
    assert delta("monitor_notifications_total", channel="ops", status="sent") == 1
    assert delta("monitor_notifications_total", channel="ops", status="failed") == 2
    assert after[("monitor_outbox_backlog", (("status", "pending"),))] == 3
    assert after[("monitor_source_up", (("source", "b"),))] == 0


def test_daemon_without_serve_web_opens_no_port(tmp_path: Path) -> None:
    """Tests and embedders building a Daemon do not grab web.listen unless they ask."""
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"database: {{url: 'sqlite:///{tmp_path / 'm.db'}'}}\nsources: []\n", encoding="utf-8")

    async def scenario() -> None:
        daemon = Daemon(load_config(cfg))
        await daemon.start()
        try:
            assert daemon.web_server is None and daemon.readiness() == []
        finally:
            await daemon.shutdown()
        assert daemon.readiness() != []

    asyncio.run(scenario())
