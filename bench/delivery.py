"""The outbox: how fast the notification policy writes messages, how fast the deliverer sends them, and how long a
message takes from the incident change to the receiver.

A webhook receiver on 127.0.0.1 answers every POST at once (or after ``--receiver-delay`` seconds, to stand in for
a real chat service's latency). Three figures:

* policy: ``Notifier.on_incident`` calls per second on incidents with 50 attached posts (it reads the incident,
  picks three representative posts, routes, writes one row per channel) on SQLite;
* throughput: rows delivered per second by one ``Deliverer`` with ``--channels`` webhook channels
  (each channel's rows go out one at a time, channels in parallel);
* latency: from the commit of an incident change (group_wait 0) to the receiver's answer, through the same loop
  the daemon runs (woken by the commit), median and p90 over ``--latency-runs`` changes.

Nothing is asserted. Run:  python bench/delivery.py [--messages 2000] [--channels 4] [--receiver-delay 0]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402

from alerts.delivery import Deliverer, build_channels  # noqa: E402
from alerts.notify import Notifier  # noqa: E402
from monitor.clock import SystemClock  # noqa: E402
from monitor.config import parse_config  # noqa: E402
from monitor.db import Store, make_engine, upgrade  # noqa: E402
from monitor.db.schema import incident_posts, incidents  # noqa: E402
from monitor.normalize import Post, content_hash  # noqa: E402
from tests.receiver import Receiver  # noqa: E402

T0 = datetime(2026, 11, 20, 2, 0, tzinfo=UTC)


def seed(engine: object, count: int) -> None:
    """``count`` incidents, each with 50 posts from two sources."""
    store = Store(engine)  # type: ignore[arg-type]
    store.sync_sources([("forum", "rss", "x"), ("portal", "rss", "y")], T0)
    for source in ("forum", "portal"):
        batch = [Post(source=source, native_id=str(i), url=f"https://{source}.example.com/t/{i}", title="",
                      text=f"鲸帆手机充电发烫关机，客服拒绝退款 {i}", author=f"u{i % 400}", author_id="",
                      published_at=T0, fetched_at=T0, content_hash=content_hash("", str(i)), reposts=i % 50)
                 for i in range(25 * count)]
        store.commit_run(source, batch, {}, started_at=T0, finished_at=T0, pages=1)
    with store.engine.begin() as conn:
        for n in range(1, count + 1):
            conn.execute(incidents.insert().values(
                id=n, opened_at=T0, updated_at=T0, status="open", severity="orange", score=9.0, title=f"鲸帆 · {n}",
                keys=[f"topic:{n}"], keywords=["发烫", "退款"], sources=["forum", "portal"], authors=40, posts=50,
                representative=f"forum:{25 * (n - 1)}", watches=["鲸帆"],
                reasons=[["volume", [["minutes", 40], ["authors", 40], ["negatives", 50], ["sources", 2]]]]))
            conn.execute(incident_posts.insert(), [
                {"incident_id": n, "post_uid": f"{s}:{25 * (n - 1) + i}", "author": "", "source": s, "added_at": T0}
                for s in ("forum", "portal") for i in range(25)])


def main() -> None:
    """Print the figures."""
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--messages", type=int, default=2000, help="rows to deliver in the throughput run")
    ap.add_argument("--channels", type=int, default=4)
    ap.add_argument("--receiver-delay", type=float, default=0.0, help="seconds the receiver takes per request")
    ap.add_argument("--latency-runs", type=int, default=50)
    args = ap.parse_args()
    receiver = Receiver().start()
    receiver.delay = args.receiver_delay
    channels = "\n".join(f"  - {{name: c{i}, type: webhook, url: '{receiver.url}/c{i}', secret: s{i}}}"
                         for i in range(args.channels))
    with tempfile.TemporaryDirectory() as tmp:
        db = f"sqlite:///{Path(tmp) / 'bench.db'}"
        config = parse_config(f"database: {{url: '{db}'}}\nchannels:\n{channels}\nalerts: {{group_wait: 0s}}\n")
        engine = make_engine(db)
        upgrade(engine)
        incidents_n = max(1, args.messages // args.channels)
        seed(engine, incidents_n)
        notifier = Notifier(config)
        now = datetime.now(UTC)
        start = time.perf_counter()
        for n in range(1, incidents_n + 1):
            with engine.begin() as conn:
                notifier.on_incident(conn, n, now)
        policy_s = time.perf_counter() - start
        print(f"policy: {incidents_n:,} incidents -> {incidents_n * args.channels:,} rows in {policy_s:.2f} s "
              f"({incidents_n / policy_s:,.0f} incidents/s, {policy_s / incidents_n * 1000:.2f} ms each)")

        async def deliver_all() -> tuple[int, float]:
            clock = SystemClock()
            async with httpx.AsyncClient() as http:
                d = Deliverer(engine, config, clock, build_channels(config, http, clock))
                t = time.perf_counter()
                sent = 0
                while True:
                    got = await d.run_once()
                    sent += got
                    if not got:
                        break
                return sent, time.perf_counter() - t

        sent, secs = asyncio.run(deliver_all())
        print(f"throughput: {sent:,} messages over {args.channels} channels in {secs:.2f} s "
              f"({sent / secs:,.0f} messages/s; receiver delay {args.receiver_delay * 1000:.0f} ms)")

        async def latency() -> list[float]:
            clock = SystemClock()
            stop = asyncio.Event()
            out = []
            async with httpx.AsyncClient() as http:
                one = parse_config(f"database: {{url: '{db}'}}\nchannels:\n  - {{name: c0, type: webhook, "
                                   f"url: '{receiver.url}/lat'}}\nalerts: {{group_wait: 0s}}\n")
                d = Deliverer(engine, one, clock, build_channels(one, http, clock))
                task = asyncio.create_task(d.run_forever(stop, interval=2.0))
                pol = Notifier(one)
                for n in range(1, min(args.latency_runs, incidents_n) + 1):
                    before = receiver.attempts("/lat")
                    with engine.begin() as conn:
                        conn.execute(incidents.update().where(incidents.c.id == n).values(
                            notified_at=None, notify_seq=1000 + n))
                    t = time.perf_counter()
                    with engine.begin() as conn:
                        pol.on_incident(conn, n, datetime.now(UTC) - timedelta(seconds=1))
                    d.wake.set()  # as the daemon does after each analysed poll
                    while receiver.attempts("/lat") == before:
                        await asyncio.sleep(0.001)
                    out.append(time.perf_counter() - t)
                stop.set()
                await task
            return out

        lat = asyncio.run(latency())
        q = statistics.quantiles(lat, n=10)
        print(f"latency commit -> receiver: median {statistics.median(lat) * 1000:.1f} ms, "
              f"p90 {q[8] * 1000:.1f} ms over {len(lat)} changes")
    receiver.stop()


if __name__ == "__main__":
    main()
