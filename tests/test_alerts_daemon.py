"""The daemon end to end: a complaint wave polled from two sites opens an incident, whose message is written to the
outbox with it and delivered to a webhook receiver on loopback by the daemon's delivery worker."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.db import make_engine
from monitor.db.schema import incidents, notifications, tickets
from tests.loopback import LoopbackServer, Response
from tests.receiver import Receiver
from tests.test_analysis_daemon import feed


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1."""
    r = Receiver().start()
    yield r
    r.stop()


def write(path: Path, server: LoopbackServer, receiver: Receiver, db_url: str) -> None:
    """Two rss sources, a watch, a webhook channel and no group wait."""
    path.write_text(f"""database: {{url: '{db_url}'}}
http: {{per_host_interval: 0, retries: 0, timeout: 3s}}
watches:
  - name: 鲸帆
    keywords: [鲸帆]
sources:
  - {{name: forum, type: rss, url: '{server.url("/forum.xml")}', interval: 30s}}
  - {{name: portal, type: rss, url: '{server.url("/portal.xml")}', interval: 30s}}
channels:
  - {{name: pr-team, type: webhook, url: '{receiver.url}/hook', secret: test-secret}}
alerts:
  group_wait: 0s
  console_url: http://console.example
""", encoding="utf-8")


async def run_until_delivered(daemon: Daemon, receiver: Receiver, polls: int) -> None:
    """Start, wait for the polls and the first delivery, stop."""
    daemon.outcomes = asyncio.Queue()
    await daemon.start()
    try:
        for _ in range(polls):
            await asyncio.wait_for(daemon.outcomes.get(), 20)
        await asyncio.wait_for(daemon.analysis_ready.wait(), 30)
        deadline = time.monotonic() + 20
        while not receiver.deliveries() and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
    finally:
        await daemon.shutdown()


def test_a_wave_becomes_an_incident_message_delivered_by_the_daemon(server: LoopbackServer, receiver: Receiver,
                                                                     tmp_path: Path, db_url: str) -> None:
    server.route("/robots.txt", Response(404))
    server.route("/forum.xml", Response(200, feed(0, 14, "forum"), {"Content-Type": "application/rss+xml"}))
    server.route("/portal.xml", Response(200, feed(14, 14, "portal"), {"Content-Type": "application/rss+xml"}))
    cfg = tmp_path / "config.yaml"
    write(cfg, server, receiver, db_url)
    asyncio.run(run_until_delivered(Daemon(load_config(cfg), first_run_spread=0), receiver, 2))
    [got] = [r for r in receiver.received if r.status == 200]
    body = got.json()
    message = body["message"]
    assert body["kind"] == "incident.opened" and message["title"].startswith(("🔵", "🟡", "🟠", "🔴"))
    assert "鲸帆" in message["title"] and message["link"].startswith("http://console.example/incidents/")
    assert 1 <= len(message["posts"]) <= 3 and {p["source"] for p in message["posts"]} <= {"forum", "portal"}
    engine = make_engine(db_url)
    with engine.connect() as conn:
        rows = conn.execute(select(notifications).order_by(notifications.c.id)).all()
        [incident] = conn.execute(select(incidents)).all()
        [ticket] = conn.execute(select(tickets)).all()
    engine.dispose()
    # The incident opened a ticket in the complaint queue, in the same transaction, with its registration fields.
    assert incident.ticket_id == ticket.id and ticket.incident_id == incident.id and ticket.state == "accepted"
    assert ticket.platform and set(ticket.platform.split("、")) <= {"forum", "portal"} and "鲸帆" in ticket.content
    first, *later = rows
    assert first.status == "sent" and first.delivery_id == got.headers["X-Monitor-Delivery"]
    # The wave kept growing within seconds: at most one more message, held back by group_interval (5 min).
    assert len(later) <= 1
    for row in later:
        assert row.status == "pending" and row.kind == "incident.escalated"
        assert row.not_before >= first.created_at + timedelta(minutes=5)
    assert incident.notified_at is not None and incident.notify_seq == 1 + len(later)
