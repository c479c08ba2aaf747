"""The outbox delivery worker against a real webhook receiver on loopback: delivery, outage and recovery, backoff,
Retry-After, independent channels, giving up, and a process killed with SIGKILL mid-delivery (nothing lost,
nothing delivered twice once receivers drop repeated delivery ids). SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine

from alerts import actions
from alerts.delivery import Deliverer, build_channels
from alerts.message import Message, PostRef
from alerts.outbox import enqueue
from monitor.clock import ManualClock
from monitor.config import Config, parse_config
from monitor.db import make_engine, upgrade
from monitor.db.schema import notifications
from tests.receiver import Receiver

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A webhook receiver on 127.0.0.1."""
    r = Receiver().start()
    yield r
    r.stop()


def make_config(receiver: Receiver, db_url: str = "sqlite:///:memory:", extra: str = "") -> Config:
    """Two webhook channels on the receiver (paths /a and /b)."""
    return parse_config(f"""
database: {{url: '{db_url}'}}
channels:
  - {{name: a, type: webhook, url: '{receiver.url}/a', secret: s3cret-a, timeout: 2s}}
  - {{name: b, type: webhook, url: '{receiver.url}/b', timeout: 2s}}
alerts:
  retry_backoff: 10s
  retry_backoff_max: 10m
  give_up_after: 3h
{extra}""")


def message(n: int) -> Message:
    """A small incident message."""
    return Message(kind="incident.opened", severity="orange", title=f"🟠【橙色预警·新预警】事件 {n}",
                   summary="关键词：发烫", facts=(("相关帖子", "12"),),
                   reasons=("40 分钟内 9 位用户发布 12 条负面内容",),
                   posts=(PostRef(text="充电发烫", url="https://forum.example.com/t/1"),),
                   link=f"https://monitor.example.com/incidents/{n}", data={"incident": {"id": n}})


def put(engine: Engine, n: int, channels: list[str], now: datetime = T0) -> None:
    """Write notification ``n`` for ``channels`` the way the notifier does."""
    with engine.begin() as conn:
        enqueue(conn, key=f"incident:{n}#1", channels=channels, message=message(n), subject=f"incident:{n}", now=now)


def status(engine: Engine) -> list[tuple[str, str, int]]:
    """(key, status, attempts) of every row, oldest first."""
    with engine.connect() as conn:
        return [(r.key, r.status, r.attempts) for r in conn.execute(
            select(notifications).order_by(notifications.c.id))]


@pytest.fixture
def engine(db_url: str) -> Engine:
    """A migrated database."""
    eng = make_engine(db_url)
    upgrade(eng)
    return eng


def run(coro: Any) -> Any:
    """Run a coroutine to completion."""
    return asyncio.run(coro)


async def deliver(engine: Engine, config: Config, clock: ManualClock, rounds: int = 1, step: float = 0.0) -> int:
    """``rounds`` delivery rounds, moving the clock ``step`` seconds before each; returns messages delivered."""
    async with httpx.AsyncClient() as http:
        d = Deliverer(engine, config, clock, build_channels(config, http, clock))
        total = 0
        for _ in range(rounds):
            clock.advance(step)
            total += await d.run_once()
        return total


def test_due_messages_are_delivered_once_with_a_stable_delivery_id(engine: Engine, receiver: Receiver) -> None:
    cfg = make_config(receiver)
    put(engine, 1, ["a", "b"])
    put(engine, 1, ["a", "b"])  # the same notification written twice (a retried transaction) is stored once
    clock = ManualClock(T0)
    assert run(deliver(engine, cfg, clock, rounds=2)) == 2
    assert status(engine) == [("incident:1#1>a", "sent", 1), ("incident:1#1>b", "sent", 1)]
    with engine.connect() as conn:
        ids = dict(conn.execute(select(notifications.c.channel, notifications.c.delivery_id)).all())
    got = {r.path: r for r in receiver.received}
    assert got["/a"].headers["X-Monitor-Delivery"] == ids["a"] and got["/b"].headers["X-Monitor-Delivery"] == ids["b"]
    body = got["/a"].json()
    assert body["schema"] == "monitor.notification/1" and body["message"]["title"].endswith("事件 1")
    assert got["/a"].headers["X-Monitor-Signature"].startswith("sha256=")


def test_messages_held_back_are_not_sent_early(engine: Engine, receiver: Receiver) -> None:
    cfg = make_config(receiver)
    with engine.begin() as conn:
        enqueue(conn, key="incident:7#1", channels=["a"], message=message(7), subject="incident:7", now=T0,
                not_before=T0 + timedelta(seconds=30))
    clock = ManualClock(T0)
    assert run(deliver(engine, cfg, clock, rounds=1, step=29)) == 0
    assert run(deliver(engine, cfg, clock, rounds=1, step=1)) == 1


def test_a_channel_down_for_an_hour_gets_its_messages_in_order_when_it_comes_back(
        engine: Engine, receiver: Receiver) -> None:
    cfg = make_config(receiver)
    for n in range(1, 6):
        put(engine, n, ["a"])
    receiver.status = 503
    clock = ManualClock(T0)

    async def outage_then_recovery() -> int:
        async with httpx.AsyncClient() as http:
            d = Deliverer(engine, cfg, clock, build_channels(cfg, http, clock))
            for _ in range(120):  # an hour, a round every 30 s
                clock.advance(30)
                await d.run_once()
            attempts_during_outage = receiver.attempts("/a")
            receiver.status = 200
            for _ in range(25):  # the backoff is at most 10 min: everything is out within 12.5 min
                clock.advance(30)
                await d.run_once()
            return attempts_during_outage

    attempts = run(outage_then_recovery())
    # Backoff doubling from 10 s to the 10 min cap: a handful of attempts in the hour, not one every round,
    # and only the first message is tried while the channel is down (the rest wait behind it).
    assert 6 <= attempts <= 14
    assert {r.headers["X-Monitor-Delivery"] for r in receiver.received if r.status == 503} == \
        {receiver.received[0].headers["X-Monitor-Delivery"]}
    titles = [r.json()["message"]["title"][-4:] for r in receiver.received if r.status == 200]
    assert titles == ["事件 1", "事件 2", "事件 3", "事件 4", "事件 5"]
    assert all(s == "sent" for _, s, _ in status(engine))


def test_one_dead_channel_does_not_hold_up_another(engine: Engine, receiver: Receiver, tmp_path: Path) -> None:
    cfg = parse_config(f"""
channels:
  - {{name: dead, type: webhook, url: 'http://127.0.0.1:9/nothing-listens-here', timeout: 1s}}
  - {{name: b, type: webhook, url: '{receiver.url}/b'}}
""")
    put(engine, 1, ["dead", "b"])
    put(engine, 2, ["dead", "b"])
    clock = ManualClock(T0)
    assert run(deliver(engine, cfg, clock, rounds=1)) == 2
    assert [s for _, s, _ in status(engine)] == ["pending", "sent", "pending", "sent"]
    with engine.connect() as conn:
        err = conn.execute(select(notifications.c.last_error).where(notifications.c.channel == "dead")
                           .order_by(notifications.c.id)).scalars().first()
    assert err and "127.0.0.1" in err and "nothing-listens-here" not in err  # the host, never the full address


def test_retry_after_is_honoured_and_a_message_is_given_up_only_after_give_up_after(
        engine: Engine, receiver: Receiver) -> None:
    cfg = make_config(receiver)
    put(engine, 1, ["a"])
    receiver.status, receiver.retry_after = 429, "120"
    clock = ManualClock(T0)
    run(deliver(engine, cfg, clock))
    with engine.connect() as conn:
        row = conn.execute(select(notifications)).one()
    assert row.status == "pending" and row.next_attempt_at >= T0 + timedelta(seconds=120)
    receiver.status, receiver.retry_after = 500, None
    run(deliver(engine, cfg, clock, rounds=40, step=600))  # more than three hours of 500s
    with engine.connect() as conn:
        row = conn.execute(select(notifications)).one()
    assert row.status == "failed" and "500" in row.last_error
    # Someone fixes the receiver and asks for a retry: it goes out.
    receiver.status = 200
    assert actions.retry_failed(make_engine_like(engine), clock.now()) == 1
    assert run(deliver(engine, cfg, clock)) == 1


def make_engine_like(engine: Engine) -> Engine:
    """The same engine (actions take an engine, as the CLI passes one)."""
    return engine


def test_a_message_left_sending_by_a_crash_goes_out_again_with_the_same_id(engine: Engine, receiver: Receiver) -> None:
    cfg = make_config(receiver)
    put(engine, 1, ["a"])
    with engine.begin() as conn:  # what a process killed between claim and answer leaves behind
        conn.execute(update(notifications).values(status="sending", attempts=1))
        delivery_id = conn.execute(select(notifications.c.delivery_id)).scalar_one()

    async def restart() -> int:
        async with httpx.AsyncClient() as http:
            clock = ManualClock(T0)
            d = Deliverer(engine, cfg, clock, build_channels(cfg, http, clock))
            assert await d.recover() == 1
            return await d.run_once()

    assert run(restart()) == 1
    assert receiver.deliveries("/a") == [delivery_id]
    assert status(engine) == [("incident:1#1>a", "sent", 2)]


def test_sigkill_at_random_points_loses_nothing_and_each_delivery_id_arrives(
        receiver: Receiver, tmp_path: Path) -> None:
    """A real process delivering 60 messages to two channels is killed with SIGKILL four times at random moments,
    then restarted until done. Every message arrives; a repeat can only be a message that was in flight at a kill,
    and it carries the same delivery id, so a receiver that drops known ids processes each exactly once."""
    db = tmp_path / "outbox.db"
    cfg_path = tmp_path / "config.yaml"
    cfg_path.write_text(f"""
database: {{url: 'sqlite:///{db}'}}
channels:
  - {{name: a, type: webhook, url: '{receiver.url}/a', timeout: 5s}}
  - {{name: b, type: webhook, url: '{receiver.url}/b', timeout: 5s}}
""", encoding="utf-8")
    engine = make_engine(f"sqlite:///{db}")
    upgrade(engine)
    now = datetime.now(UTC) - timedelta(seconds=1)
    for n in range(30):
        put(engine, n, ["a", "b"], now)
    with engine.connect() as conn:
        expected = set(conn.execute(select(notifications.c.delivery_id)).scalars())
    receiver.delay = 0.02
    rng = random.Random(7)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    kills = 0
    for _ in range(12):
        proc = subprocess.Popen([sys.executable, "-m", "tests.deliver_proc", str(cfg_path)], cwd=ROOT, env=env,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        assert proc.stdout is not None
        assert proc.stdout.readline().strip() == b"ready", proc.stderr.read() if proc.stderr else ""
        if kills < 4:
            time.sleep(rng.uniform(0.05, 0.4))
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
            continue
        assert proc.wait(60) == 0
        break
    assert kills == 4
    got = receiver.deliveries()
    assert set(got) == expected  # nothing lost
    repeats = len(got) - len(set(got))
    assert repeats <= 2 * kills  # at most the one message in flight per channel at each kill
    with engine.connect() as conn:
        assert set(conn.execute(select(notifications.c.status)).scalars()) == {"sent"}


def test_the_external_queue_adapter_posts_signed_ticket_changes(engine: Engine, receiver: Receiver) -> None:
    from alerts.channels.webhook import verify

    cfg = parse_config(f"""
queue:
  external: {{url: '{receiver.url}/tickets', secret: ext-secret, headers: {{X-Tenant: pr}}}}
""")
    sync = Message(kind="ticket.sync", severity="orange", title="T20261120-0001", data={"ticket": {"id": 1}})
    with engine.begin() as conn:
        enqueue(conn, key="ticket:1:sync:1", channels=["@external"], message=sync, subject="ticket:1", now=T0)
    assert run(deliver(engine, cfg, ManualClock(T0))) == 1
    [got] = receiver.received
    assert got.path == "/tickets" and got.headers["X-Tenant"] == "pr"
    assert verify("ext-secret", got.headers["X-Monitor-Timestamp"], got.body, got.headers["X-Monitor-Signature"])
    assert got.json()["message"]["data"] == {"ticket": {"id": 1}}
