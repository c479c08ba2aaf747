"""``monitor demo``: the local site's feeds, and the command end to end (printed, stored, GBK intact, clean stop)."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.error import HTTPError

import pytest

from monitor.db import Store, make_engine
from monitor.demo.site import FEEDS, DemoSite, load_posts
from monitor.source import Page
from sources.rss import RssConfig, RssSource

ROOT = Path(__file__).resolve().parents[1]
LINE = re.compile(r"^\[(\d\d:\d\d:\d\d)\] (\S+)\s+(.+?): (.+)$")
FEED_NAMES = {f.name for f in FEEDS}


def demo_cmd(*args: str) -> list[str]:
    """The command line of ``monitor demo`` in a fresh interpreter."""
    return [sys.executable, "-m", "monitor.cli", "demo", *args]


def demo_env() -> dict[str, str]:
    """The environment for the demo subprocess: UTF-8 output whatever the locale."""
    return {**os.environ, "PYTHONIOENCODING": "utf-8"}


def get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    """GET ``url``; 304 and errors come back as a status, not an exception."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read()
    except HTTPError as exc:
        return exc.code, {k.lower(): v for k, v in exc.headers.items()}, exc.read()


def test_posts_file_is_usable() -> None:
    """The shipped data: enough lines, every field, each kind, and one burst of many authors with one grievance."""
    posts = load_posts()
    assert 150 <= len(posts) <= 200
    assert {p.kind for p in posts} == {"forum", "complaint", "news"}
    assert all(p.author and p.title and p.text for p in posts)
    assert {p.sentiment_hint for p in posts} <= {"positive", "neutral", "negative"}
    clusters = Counter(p.cluster for p in posts if p.cluster)
    name, size = clusters.most_common(1)[0]
    burst = [i for i, p in enumerate(posts) if p.cluster == name]
    assert size >= 15 and len({posts[i].author for i in burst}) >= 15
    assert burst[-1] - burst[0] < size + 5, "the burst's posts must follow each other (they appear within minutes)"
    for p in posts:  # the GBK feed carries forum posts: they must survive GBK without numeric references
        (p.author + p.title + p.text).encode("gbk")


def test_site_serves_robots_and_answers_conditional_gets() -> None:
    """robots.txt allows all; every feed has validators and answers 304 until a new post appears."""
    now = [1_760_000_000.0]
    site = DemoSite(clock=lambda: now[0], gap=(5, 5)).start()
    try:
        status, _, body = get(site.base + "/robots.txt")
        assert status == 200 and b"Allow: /" in body
        feed = next(f for f in FEEDS if f.name == "forum-board")
        status, headers, body = get(site.url(feed))
        assert status == 200 and headers["etag"] and headers["last-modified"]
        assert "鲸帆" in body.decode("utf-8")
        assert get(site.url(feed), {"If-None-Match": headers["etag"]})[0] == 304
        assert get(site.url(feed), {"If-Modified-Since": headers["last-modified"]})[0] == 304
        now[0] += 600  # ten minutes on: many posts later, some on this feed
        status, newer, _ = get(site.url(feed), {"If-None-Match": headers["etag"]})
        assert status == 200 and newer["etag"] != headers["etag"]
        assert site.stats["forum-board 304"] == 2 and site.stats["robots"] == 1
    finally:
        site.stop()


def test_gbk_feed_is_gbk_and_reads_back_intact() -> None:
    """The old-forum feed is GBK bytes labelled GBK; the rss source reads its Chinese text back exactly."""
    site = DemoSite().start()
    try:
        feed = next(f for f in FEEDS if f.encoding == "gbk")
        status, headers, body = get(site.url(feed))
    finally:
        site.stop()
    assert status == 200 and "charset=GBK" in headers["content-type"]
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    source = RssSource(RssConfig(name=feed.name, type="rss", url=site.url(feed)))
    result = source.parse(Page(site.url(feed), 200, headers, body, datetime.now(UTC)))
    known = {(p.author, p.title, p.text) for p in load_posts()}
    assert result.posts and not result.problems
    assert all((p.author, p.title, p.text) in known for p in result.posts)
    assert all(p.published_at is not None and p.published_at.tzinfo is None for p in result.posts)  # local, naive


@pytest.mark.slow
def test_demo_command_prints_and_stores_posts_from_every_feed(tmp_path: Path) -> None:
    """`monitor demo --duration 10` prints posts from each feed within seconds and stores exactly those."""
    db = tmp_path / "demo.db"
    proc = subprocess.run(demo_cmd("--duration", "10", "--db", str(db)), cwd=ROOT, env=demo_env(),
                          capture_output=True, text=True, encoding="utf-8", timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    printed = [m.groups() for m in map(LINE.match, proc.stdout.splitlines()) if m and m.group(2) in FEED_NAMES]
    by_feed = Counter(source for _, source, _, _ in printed)
    assert set(by_feed) == FEED_NAMES, proc.stdout
    known = {(p.author, p.title) for p in load_posts()}
    for _, _, author, body in printed:  # the line shows the author and the title exactly as written
        assert any(author == a and body.startswith(t[:20]) for a, t in known), (author, body)
    assert f"posts kept in {db}" in proc.stdout

    store = Store(make_engine(f"sqlite:///{db}"))
    try:
        stored = {name: store.recent_posts(source=name, limit=1000) for name in FEED_NAMES}
    finally:
        store.engine.dispose()
    assert {name: len(posts) for name, posts in stored.items()} == dict(by_feed)
    full = {(p.author, p.title, p.text) for p in load_posts()}
    now = datetime.now(UTC)
    for name, posts in stored.items():
        for post in posts:
            assert (post.author, post.title, post.text) in full, f"{name}: text changed on the way: {post}"
            # Dates without an offset (the GBK forum) were read as Beijing time, not UTC (8 h in the future).
            assert now - timedelta(hours=12) < post.published_at <= post.fetched_at, (name, post)
            assert "claimed_published_at" not in post.extra


@pytest.mark.slow
def test_demo_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    """SIGTERM while polling: exit status 0 and the closing summary, within seconds."""
    proc = subprocess.Popen(demo_cmd("--db", str(tmp_path / "d.db")), cwd=ROOT, env=demo_env(),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    seen: set[str] = set()
    out: list[str] = []
    try:
        while seen != FEED_NAMES:
            line = lines.get(timeout=20)
            out.append(line)
            m = LINE.match(line)
            if m:
                seen.add(m.group(2))
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    reader.join(timeout=5)
    while not lines.empty():
        out.append(lines.get())
    assert any(line.startswith("stopped after") for line in out), "".join(out)
    assert proc.stderr is not None and "Traceback" not in proc.stderr.read()
