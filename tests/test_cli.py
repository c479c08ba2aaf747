"""The `monitor` command line, run as a real process: run/stop/restart/kill, reload on SIGHUP, and the read commands."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.loopback import LoopbackServer, Response
from tests.test_daemon import rss, write_config

MONITOR = [sys.executable, "-m", "monitor.cli"]


def spawn(cfg: Path) -> subprocess.Popen[str]:
    """Start `monitor run` on ``cfg``."""
    return subprocess.Popen([*MONITOR, "run", "--config", str(cfg)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"})


def wait_for(predicate: Callable[[], object], timeout: float = 20.0,
             why: Callable[[], object] | None = None) -> None:
    """Poll ``predicate`` until true or fail after ``timeout`` seconds (at once when ``why`` returns a reason)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if why is not None and (reason := why()):
            raise AssertionError(f"condition cannot be met: {reason}")
        time.sleep(0.1)
    raise AssertionError("condition not met in time")


def count(db: Path, sql: str = "select count(*) from posts") -> int:
    """A count from the daemon's SQLite database (0 before the table exists)."""
    if not db.exists():
        return 0
    with sqlite3.connect(db) as conn:
        try:
            return int(conn.execute(sql).fetchone()[0])
        except sqlite3.OperationalError:
            return 0


@pytest.fixture
def site(server: LoopbackServer) -> LoopbackServer:
    """A site with one feed of three posts and no robots.txt."""
    server.route("/robots.txt", Response(404))
    server.route("/good.xml", Response(200, rss([("1", "一"), ("2", "二"), ("3", "三")]),
                                      {"Content-Type": "application/rss+xml"}))
    return server


def test_run_stops_cleanly_and_restart_stores_nothing_twice(site: LoopbackServer, tmp_path: Path) -> None:
    """SIGTERM stops the daemon with exit 0; a restart resumes from stored state without duplicating posts."""
    cfg, db = tmp_path / "config.yaml", tmp_path / "m.db"
    write_config(cfg, site, ["good"], db)
    proc = spawn(cfg)
    try:
        wait_for(lambda: count(db) == 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    assert "event=daemon.stopped" in err

    site.route("/good.xml", Response(200, rss([("1", "一"), ("2", "二"), ("3", "三"), ("4", "四")])))
    proc = spawn(cfg)
    try:
        wait_for(lambda: count(db, "select count(*) from source_runs") >= 2)
    finally:
        proc.send_signal(signal.SIGINT)
        proc.communicate(timeout=20)
    assert count(db) == 4
    assert count(db, "select count(distinct native_id) from posts") == 4


def test_sighup_reloads_sources(site: LoopbackServer, tmp_path: Path) -> None:
    """SIGHUP re-reads the config: a new source is polled without a restart."""
    cfg, db = tmp_path / "config.yaml", tmp_path / "m.db"
    write_config(cfg, site, ["good"], db)
    site.route("/more.xml", Response(200, rss([("x", "新")])))
    proc = spawn(cfg)
    try:
        wait_for(lambda: count(db) == 3)
        write_config(cfg, site, ["good", "more"], db)
        proc.send_signal(signal.SIGHUP)
        wait_for(lambda: count(db) == 4)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
    assert "event=config.reloaded" in err and "more" in err


def test_kill_9_never_half_stores_a_run(server: LoopbackServer, tmp_path: Path) -> None:
    """A daemon killed at any moment leaves either none or all of a run's posts, and the next run completes it."""
    n = 500  # the rss kind reads at most 500 entries a poll by default
    server.route("/robots.txt", Response(404))
    server.route("/big.xml", Response(200, rss([(str(i), f"帖子{i} " * 200) for i in range(n)])))
    cfg, db = tmp_path / "config.yaml", tmp_path / "m.db"
    write_config(cfg, server, ["big"], db)
    for delay in (0.8, 1.2, 1.6, 2.0, 2.6):
        proc = spawn(cfg)
        time.sleep(delay)
        proc.kill()
        proc.communicate(timeout=10)
        stored = count(db)
        assert stored in (0, n), f"half-stored run: {stored} of {n} posts after kill -9"
        runs = count(db, "select count(*) from source_runs where status='ok'")
        assert (stored == n) == (runs >= 1), "posts and the run record must commit together"
    proc = spawn(cfg)
    try:
        # Generous: this checks that the run completes, not how fast; on a loaded 2-core CI machine the first poll
        # waits behind the analysis stage's start (model load, baselines) on the single worker thread.
        wait_for(lambda: count(db, "select count(*) from source_runs where status='ok'") >= 1, timeout=90,
                 why=lambda: proc.poll() is not None and f"the daemon exited {proc.returncode}")
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=20)
        print(err[-4000:])  # shown by pytest only when the test fails
    assert count(db) == n and count(db, "select count(distinct native_id) from posts") == n


def test_check_try_source_sources_and_posts(site: LoopbackServer, tmp_path: Path) -> None:
    """check validates; try-source prints posts without storing; sources and posts read the database."""
    cfg, db = tmp_path / "config.yaml", tmp_path / "m.db"
    write_config(cfg, site, ["good"], db)

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*MONITOR, *args, "--config", str(cfg)], capture_output=True, text=True, timeout=60)

    assert cli("check").returncode == 0
    tried = cli("try-source", "good")
    assert tried.returncode == 0, tried.stderr
    lines = [json.loads(line) for line in tried.stdout.splitlines()]
    assert [p["id"] for p in lines] == ["good:1", "good:2", "good:3"]
    assert lines[0]["title"] == "一" and lines[0]["published_at"] == "2026-11-20T00:00:00+00:00"
    assert count(db) == 0, "try-source must store nothing"
    assert "1 page(s), 3 post(s)" in tried.stderr

    missing = cli("try-source", "nope")
    assert missing.returncode == 2 and "no source named 'nope'" in missing.stderr and "good" in missing.stderr

    assert cli("db", "upgrade").returncode == 0
    before = cli("sources")
    assert before.returncode == 0 and "good" in before.stdout and "new" in before.stdout

    proc = spawn(cfg)
    try:
        wait_for(lambda: count(db) == 3)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=20)
    status = cli("sources", "--json")
    [row] = [json.loads(line) for line in status.stdout.splitlines()]
    assert row["status"] == "ok" and row["posts"] == 3 and row["failures"] == 0

    posts = cli("posts", "--json", "--limit", "2")
    assert [json.loads(line)["id"] for line in posts.stdout.splitlines()] == ["good:3", "good:2"] or \
        len(posts.stdout.splitlines()) == 2
    table = cli("posts", "--source", "good")
    assert table.returncode == 0 and "一" in table.stdout
    assert cli("posts", "--since", "5 parsecs").returncode == 2


def test_try_source_reports_fetch_errors(server: LoopbackServer, tmp_path: Path) -> None:
    """A failing source in try-source exits 1 with the reason on stderr."""
    server.route("/robots.txt", Response(404))
    server.route("/good.xml", Response(403, b"forbidden"))
    cfg = tmp_path / "config.yaml"
    write_config(cfg, server, ["good"], tmp_path / "m.db")
    out = subprocess.run([*MONITOR, "try-source", "good", "--config", str(cfg)], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1 and "HTTP 403" in out.stderr


def test_try_source_raw_and_save_fixture(site: LoopbackServer, tmp_path: Path) -> None:
    """--raw prints each field as parsed; --save-fixture writes pages that parse back to the saved result."""
    from datetime import datetime
    from zoneinfo import ZoneInfo

    from monitor.config import load_config
    from monitor.registry import get_kind
    from monitor.runner import parse_pages
    from monitor.source import Page

    cfg = tmp_path / "config.yaml"
    write_config(cfg, site, ["good"], tmp_path / "m.db")
    raw = subprocess.run([*MONITOR, "try-source", "good", "--raw", "--config", str(cfg)], capture_output=True,
                         text=True, timeout=60)
    assert raw.returncode == 0, raw.stderr
    items = [json.loads(line) for line in raw.stdout.splitlines()]
    assert [i["native_id"] for i in items] == ["1", "2", "3"]
    assert items[0]["page"].endswith("/good.xml") and items[0]["title"] == "一"

    folder = tmp_path / "fixture"
    saved = subprocess.run([*MONITOR, "try-source", "good", "--save-fixture", str(folder), "--config", str(cfg)],
                           capture_output=True, text=True, timeout=60)
    assert saved.returncode == 0, saved.stderr
    manifest = json.loads((folder / "pages.json").read_text(encoding="utf-8"))
    expected = json.loads((folder / "expected.json").read_text(encoding="utf-8"))
    assert [p["id"] for p in expected["posts"]] == ["good:1", "good:2", "good:3"] and expected["error"] is None
    # The saved page is enough to reproduce the result offline: what a regression test does with it.
    config = load_config(cfg)
    spec = config.source("good")
    pages = [Page(url=m["url"], status=m["status"], headers=m["headers"],
                  content=(folder / m["file"]).read_bytes(), fetched_at=datetime.fromisoformat(m["fetched_at"]))
             for m in manifest]
    posts, _ = parse_pages(get_kind(spec.type)(spec), pages, ZoneInfo(config.timezone))
    assert [p.uid for p in posts] == [p["id"] for p in expected["posts"]]
    assert [p.text for p in posts] == [p["text"] for p in expected["posts"]]
    assert "set-cookie" not in json.dumps(manifest).lower()


def test_every_command_has_help() -> None:
    """`--help` works on every command and subcommand."""
    for args in (["--help"], ["run", "--help"], ["check", "--help"], ["try-source", "--help"], ["sources", "--help"],
                 ["posts", "--help"], ["db", "--help"], ["db", "upgrade", "--help"]):
        out = subprocess.run([*MONITOR, *args], capture_output=True, text=True, timeout=30)
        assert out.returncode == 0 and "Usage:" in out.stdout, args
