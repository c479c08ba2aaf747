"""The delivery worker: sends due outbox rows through their channels, with retries and backoff.

Each channel's rows go out one at a time in the order they were written (a chat robot shows them in order, and
its rate limit is per robot); channels are independent, so a dead channel never holds up the others. A failed
attempt moves the row's ``next_attempt_at`` forward (doubling from ``retry_backoff`` up to ``retry_backoff_max``,
or what the service asked for in Retry-After) and holds back the rest of that channel's rows until then. A row is
given up (``failed``) only after ``give_up_after``, and the log says so.

Crash safety: a row is marked ``sending`` (committed) before its attempt and ``sent`` right after the service
answered. A process killed in between leaves the row ``sending``; the next start sends it again with the same
delivery id, which webhook receivers use to drop the repeat (chat robots have no such id: at most the one message
in flight at the moment of the kill can show twice; none is ever lost).
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import httpx
from sqlalchemy import func, select, update
from sqlalchemy.engine import Engine

from alerts.channels import Channel, Delivery, DeliveryError, get_channel_kind
from alerts.message import Message
from alerts.outbox import FAILED, PENDING, SENDING, SENT
from monitor.clock import Clock
from monitor.config import Config
from monitor.db.schema import notifications
from monitor.logs import event
from monitor.metrics import record_notification

log = logging.getLogger("monitor.delivery")
#: The reserved channel name of the external ticketing system (``queue.external``).
EXTERNAL = "@external"
#: Rows fetched per channel per round.
BATCH = 20


@dataclass(frozen=True)
class _Row:
    id: int
    key: str
    delivery_id: str
    channel: str
    attempts: int
    created_at: datetime
    message: dict[str, Any]


def build_channels(config: Config, http: httpx.AsyncClient, clock: Clock) -> dict[str, Channel]:
    """One Channel per enabled configured channel, plus the external queue adapter when configured."""
    out: dict[str, Channel] = {}
    for cfg in config.channels:
        if cfg.enabled:
            out[cfg.name] = get_channel_kind(cfg.type)(cfg, http, clock)
    ext = config.queue.external
    if ext is not None:
        cls = get_channel_kind("webhook")
        model = cls.config_model.model_validate({"name": "external", "type": "webhook", "url": ext.url,
                                                 "secret": ext.secret, "headers": dict(ext.headers)})
        out[EXTERNAL] = cls(model, http, clock)
    return out


class Deliverer:
    """Sends what the outbox holds. ``db`` runs a blocking database call (the daemon passes its worker thread, so
    SQLite sees one writer)."""

    def __init__(self, engine: Engine, config: Config, clock: Clock, channels: dict[str, Channel],
                 db: Callable[[Callable[[], Any]], Awaitable[Any]] | None = None) -> None:
        self.engine = engine
        self.config = config
        self.clock = clock
        self.channels = channels
        self._db: Callable[[Callable[[], Any]], Awaitable[Any]] = db or _to_thread
        self._blocked: dict[str, datetime] = {}  # channel -> no attempts before this (after a failure)
        self._failures: dict[str, int] = {}  # channel -> consecutive failed attempts
        self._warned: set[str] = set()
        self.wake = asyncio.Event()
        self.sent = 0
        self.failed_attempts = 0

    async def recover(self) -> int:
        """After a restart: rows left ``sending`` by a killed process go back to the queue (same delivery id)."""
        def work() -> int:
            with self.engine.begin() as conn:
                return conn.execute(update(notifications).where(notifications.c.status == SENDING)
                                    .values(status=PENDING)).rowcount or 0
        count: int = await self._db(work)
        if count:
            event(log, "delivery.in_doubt", logging.WARNING, rows=count,
                  hint="these were being sent when the process stopped; they are sent again with the same "
                       "delivery id, so receivers can drop a repeat")
        return count

    async def run_once(self) -> int:
        """Send every row that is due now; returns how many were delivered."""
        now = self.clock.now()
        due: list[_Row] = await self._db(partial(self._due, now))
        by_channel: dict[str, list[_Row]] = {}
        for row in due:
            by_channel.setdefault(row.channel, []).append(row)
        results = await asyncio.gather(*(self._drain(name, rows) for name, rows in by_channel.items()))
        return sum(results)

    async def run_forever(self, stop: asyncio.Event, interval: float = 2.0) -> None:
        """Deliver until ``stop`` is set; ``wake`` cuts the wait short when new rows were written."""
        await self.recover()
        while not stop.is_set():
            self.wake.clear()  # before the round: a wake-up during the round starts the next one at once
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # the database is away: keep the loop, try again
                event(log, "delivery.error", logging.ERROR, error=repr(exc))
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self.wake.wait())]
            _done, pending = await asyncio.wait(waiters, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
            for w in pending:
                w.cancel()

    def backlog(self) -> dict[str, int]:
        """Rows by status (for metrics and ``monitor outbox``)."""
        with self.engine.connect() as conn:
            rows = conn.execute(select(notifications.c.status, func.count()).group_by(notifications.c.status))
            return {r[0]: int(r[1]) for r in rows}

    # -- internals -----------------------------------------------------------------------------------------------
    def _due(self, now: datetime) -> list[_Row]:
        out: list[_Row] = []
        with self.engine.connect() as conn:
            names = conn.execute(select(notifications.c.channel).distinct().where(
                notifications.c.status == PENDING, notifications.c.next_attempt_at <= now)).scalars().all()
            for name in names:
                if name not in self.channels:
                    if name not in self._warned:
                        self._warned.add(name)
                        event(log, "delivery.no_channel", logging.WARNING, channel=name,
                              hint="messages for this channel wait in the outbox; add it back to channels: "
                                   "(or enable it) to deliver them")
                    continue
                if self._blocked.get(name, now) > now:
                    continue
                rows = conn.execute(select(notifications).where(
                    notifications.c.channel == name, notifications.c.status == PENDING,
                    notifications.c.next_attempt_at <= now).order_by(notifications.c.id).limit(BATCH)).all()
                out += [_Row(r.id, r.key, r.delivery_id, r.channel, r.attempts, r.created_at, dict(r.message))
                        for r in rows]
        return out

    async def _drain(self, name: str, rows: list[_Row]) -> int:
        channel = self.channels[name]
        delivered = 0
        for row in rows:
            now = self.clock.now()
            claimed = await self._db(partial(self._claim, row, now))
            if not claimed:
                continue  # someone else (another process on the same database) took it
            try:
                await channel.send(Message.from_json(row.message), Delivery(row.delivery_id, row.key,
                                                                            row.attempts + 1))
            except DeliveryError as exc:
                await self._db(partial(self._failed, row, exc))
                return delivered  # the channel's next rows wait for its backoff
            except Exception as exc:  # a bug in a channel must not stop the others; keep the row
                err = DeliveryError(f"channel {name}: unexpected error {exc!r}", channel=name)
                await self._db(partial(self._failed, row, err))
                return delivered
            await self._db(partial(self._succeeded, row))
            delivered += 1
        return delivered

    def _claim(self, row: _Row, now: datetime) -> bool:
        with self.engine.begin() as conn:
            done = conn.execute(update(notifications).where(notifications.c.id == row.id,
                                                            notifications.c.status == PENDING)
                                .values(status=SENDING, attempts=notifications.c.attempts + 1)).rowcount
        return bool(done)

    def _succeeded(self, row: _Row) -> None:
        now = self.clock.now()
        with self.engine.begin() as conn:
            conn.execute(update(notifications).where(notifications.c.id == row.id)
                         .values(status=SENT, sent_at=now, last_error=None))
        self.sent += 1
        record_notification(row.channel, "sent")
        if self._failures.pop(row.channel, 0):
            event(log, "channel.recovered", channel=row.channel)
        self._blocked.pop(row.channel, None)
        event(log, "notification.sent", channel=row.channel, key=row.key, attempt=row.attempts + 1)

    def _failed(self, row: _Row, exc: DeliveryError) -> None:
        now = self.clock.now()
        alerts = self.config.alerts
        self.failed_attempts += 1
        record_notification(row.channel, "failed")
        n = self._failures.get(row.channel, 0) + 1
        self._failures[row.channel] = n
        if exc.retryable:
            delay = min(alerts.retry_backoff * 2 ** (n - 1), alerts.retry_backoff_max)
            delay *= random.uniform(0.9, 1.1)  # several daemons behind one proxy do not retry in lockstep
        else:
            delay = alerts.retry_backoff_max  # a config problem: keep the message, try slowly until it is fixed
        if exc.retry_after:
            delay = max(delay, exc.retry_after)
        retry_at = now + timedelta(seconds=delay)
        give_up = now - row.created_at >= timedelta(seconds=alerts.give_up_after)
        status = FAILED if give_up else PENDING
        with self.engine.begin() as conn:
            conn.execute(update(notifications).where(notifications.c.id == row.id)
                         .values(status=status, next_attempt_at=retry_at, last_error=str(exc)[:2000]))
        self._blocked[row.channel] = retry_at
        level = logging.ERROR if give_up or not exc.retryable or n == 1 else logging.WARNING
        event(log, "notification.gave_up" if give_up else "notification.retry", level, channel=row.channel,
              key=row.key, attempt=row.attempts + 1, error=str(exc), retry_in=round(delay, 1),
              hint="" if exc.retryable else "this will not work until the channel's settings are fixed")


async def _to_thread(fn: Callable[[], Any]) -> Any:
    return await asyncio.to_thread(fn)
