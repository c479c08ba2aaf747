"""Analysis inside the daemon: polled posts are analysed, a complaint wave on two sites opens one incident, posts left
unanalysed by a crash are caught up at the next start, and open incidents survive a restart. SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import text

from monitor.config import load_config
from monitor.daemon import Daemon
from monitor.db import Store, make_engine, upgrade
from monitor.normalize import Post, content_hash
from tests.loopback import LoopbackServer, Response

T0 = datetime(2026, 11, 20, 1, 0, tzinfo=UTC)
# Written for these tests: buyers repeating one grievance about a made-up brand.
WAVE = ["鲸帆手机充电发烫还自动关机，申请退款被客服拒绝了，太坑了",
        "鲸帆手机充电发烫自动关机，客服拒绝退款，气死了",
        "鲸帆手机也是充电发烫关机！客服不给退款，建了维权群一起去12315投诉",
        "鲸帆手机充电发烫关机，退款被拒，售后太恶心了"]


def feed(start: int, count: int, site: str) -> bytes:
    """RSS with ``count`` complaints by different authors, one every 90 s from T0."""
    items = []
    for i in range(start, start + count):
        when = (T0 + timedelta(seconds=90 * i)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        items.append(f"<item><guid isPermaLink='false'>{site}-{i}</guid><title>{WAVE[i % 4]}</title>"
                     f"<author>buyer{i}@example.com (买家{i})</author><description>{WAVE[i % 4]} 第{i}位</description>"
                     f"<pubDate>{when}</pubDate></item>")
    return (f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>{site}</title>"
            f"{''.join(items)}</channel></rss>").encode()


def write(path: Path, server: LoopbackServer, db_url: str) -> None:
    """Two rss sources (a forum and a complaint portal) and a watch on the brand."""
    path.write_text(f"""database: {{url: '{db_url}'}}
http: {{per_host_interval: 0, retries: 0, timeout: 3s}}
watches:
  - name: 鲸帆
    keywords: [鲸帆]
sources:
  - {{name: forum, type: rss, url: '{server.url("/forum.xml")}', interval: 30s}}
  - {{name: portal, type: rss, url: '{server.url("/portal.xml")}', interval: 30s}}
""", encoding="utf-8")


async def run_until(daemon: Daemon, polls: int) -> None:
    """Start the daemon, wait for ``polls`` outcomes and for the analysis stage, then stop it."""
    daemon.outcomes = asyncio.Queue()
    await daemon.start()
    try:
        for _ in range(polls):
            await asyncio.wait_for(daemon.outcomes.get(), 20)
        await asyncio.wait_for(daemon.analysis_ready.wait(), 30)
        # The last poll's analysis runs on the worker after its outcome; an empty job behind it waits for it.
        await asyncio.get_running_loop().run_in_executor(daemon.worker, lambda: None)
    finally:
        await daemon.shutdown()


def counts(db_url: str) -> dict[str, int]:
    """Rows that tell what the daemon did."""
    engine = make_engine(db_url)
    with engine.connect() as conn:
        out = {
            "posts": conn.execute(text("SELECT count(*) FROM posts")).scalar_one(),
            "unanalysed": conn.execute(text("SELECT count(*) FROM posts WHERE analysed_at IS NULL")).scalar_one(),
            "negative": conn.execute(text("SELECT count(*) FROM posts WHERE sentiment = 'negative'")).scalar_one(),
            "incidents": conn.execute(text("SELECT count(*) FROM incidents")).scalar_one(),
            "watched": conn.execute(text("SELECT count(*) FROM posts WHERE watches IS NOT NULL")).scalar_one(),
        }
    engine.dispose()
    return out


def test_a_wave_on_two_sites_becomes_one_incident_and_survives_a_restart(server: LoopbackServer, tmp_path: Path,
                                                                       db_url: str) -> None:
    server.route("/robots.txt", Response(404))
    server.route("/forum.xml", Response(200, feed(0, 14, "forum"), {"Content-Type": "application/rss+xml"}))
    server.route("/portal.xml", Response(200, feed(14, 14, "portal"), {"Content-Type": "application/rss+xml"}))
    cfg = tmp_path / "config.yaml"
    write(cfg, server, db_url)
    asyncio.run(run_until(Daemon(load_config(cfg), first_run_spread=0), 2))
    seen = counts(db_url)
    assert seen["posts"] == 28 and seen["unanalysed"] == 0 and seen["negative"] >= 20 and seen["watched"] == 28
    assert seen["incidents"] == 1
    store = Store(make_engine(db_url))
    [incident] = store.load_incidents()
    assert incident.status == "open" and set(incident.sources) == {"forum", "portal"}
    assert incident.title.startswith("鲸帆") and len(incident.post_ids) >= 6

    # More of the same after a restart updates the restored incident instead of opening another.
    server.route("/forum.xml", Response(200, feed(28, 10, "forum"), {"Content-Type": "application/rss+xml"}))
    asyncio.run(run_until(Daemon(load_config(cfg), first_run_spread=0), 2))
    assert counts(db_url)["incidents"] == 1
    [again] = store.load_incidents()
    assert again.id == incident.id and len(again.post_ids) > len(incident.post_ids)
    store.engine.dispose()


def test_posts_left_unanalysed_by_a_crash_are_caught_up(server: LoopbackServer, tmp_path: Path, db_url: str) -> None:
    """Posts committed by a run whose analysis never happened (a kill between the two) are analysed at start."""
    engine = make_engine(db_url)
    upgrade(engine)
    store = Store(engine)
    store.sync_sources([("forum", "rss", "x")], T0)
    posts = [Post(source="forum", native_id=f"c{i}", text=WAVE[i % 4], title="", author=f"买家{i}",
                  fetched_at=T0, published_at=T0 + timedelta(seconds=60 * i), content_hash=content_hash("", f"{i}"))
             for i in range(12)]
    store.commit_run("forum", posts, {}, started_at=T0, finished_at=T0, pages=1)
    engine.dispose()
    assert counts(db_url)["unanalysed"] == 12
    server.route("/robots.txt", Response(404))
    server.route("/forum.xml", Response(200, feed(100, 1, "forum"), {"Content-Type": "application/rss+xml"}))
    server.route("/portal.xml", Response(200, feed(200, 1, "portal"), {"Content-Type": "application/rss+xml"}))
    cfg = tmp_path / "config.yaml"
    write(cfg, server, db_url)
    asyncio.run(run_until(Daemon(load_config(cfg), first_run_spread=0), 2))
    after = counts(db_url)
    assert after["posts"] == 14 and after["unanalysed"] == 0 and after["incidents"] == 1
