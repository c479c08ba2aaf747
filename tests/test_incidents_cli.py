"""`monitor incidents`, `monitor silences` and `monitor outbox`, run as real processes on a real SQLite database."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from alerts.notify import Notifier
from monitor.config import load_config
from monitor.db import make_engine, upgrade
from monitor.db.schema import incident_events, incidents, notifications
from tests.test_notify import add_incident

MONITOR = [sys.executable, "-m", "monitor.cli"]
NOW = datetime.now(UTC)


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    """Run `monitor ARGS` and return the finished process."""
    return subprocess.run([*MONITOR, *args], capture_output=True, text=True, timeout=60)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """A config with a watch, a source, a webhook channel and two incidents in its database (one message queued)."""
    path = tmp_path / "config.yaml"
    path.write_text("""database: {url: 'sqlite:///monitor.db'}
watches: [{name: 鲸帆, keywords: [鲸帆]}]
sources: [{name: forum, type: rss, url: 'http://127.0.0.1:9/f.xml'}]
channels: [{name: ops, type: webhook, url: 'http://127.0.0.1:9/hook'}]
""", encoding="utf-8")
    engine = make_engine(f"sqlite:///{tmp_path / 'monitor.db'}")
    upgrade(engine)
    add_incident(engine, 1, severity="orange")
    add_incident(engine, 2, severity="blue", watches=("别的品牌",))
    with engine.begin() as conn:
        Notifier(load_config(path)).on_incident(conn, 1, NOW)
    engine.dispose()
    return path


def test_list_show_ack_mark_and_resolve(cfg: Path) -> None:
    out = cli("incidents", "list", "--config", str(cfg))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split()[:3] == ["ID", "OPENED", "SEV"] and len(lines) == 3
    assert "橙色" in out.stdout and "鲸帆 · 发烫 退款" in out.stdout
    shown = cli("incidents", "show", "1", "--config", str(cfg))
    assert shown.returncode == 0 and "40 分钟内 10 位用户发布 10 条负面内容" in shown.stdout
    assert "ops" in shown.stdout and "pending" in shown.stdout  # its queued message
    assert cli("incidents", "ack", "1", "--actor", "wang", "--note", "在跟进", "--config", str(cfg)).returncode == 0
    assert cli("incidents", "mark", "2", "noise", "--actor", "li", "--config", str(cfg)).returncode == 0
    done = cli("incidents", "resolve", "1", "--actor", "wang", "--real", "--config", str(cfg))
    assert done.returncode == 0 and "1 waiting message(s) dropped" in done.stdout
    as_json = [json.loads(line) for line in cli("incidents", "list", "--status", "all", "--json", "--config",
                                                str(cfg)).stdout.splitlines()]
    by_id = {r["id"]: r for r in as_json}
    assert by_id[1]["status"] == "resolved" and by_id[1]["acked_by"] == "wang" and by_id[1]["feedback"] == "real"
    assert by_id[2]["feedback"] == "noise" and by_id[2]["status"] == "open"
    engine = make_engine(f"sqlite:///{cfg.parent / 'monitor.db'}")
    with engine.connect() as conn:
        actions = conn.execute(select(incident_events.c.actor, incident_events.c.action)
                               .where(incident_events.c.incident_id == 1).order_by(incident_events.c.id)).all()
        assert conn.execute(select(incidents.c.resolved_by).where(incidents.c.id == 1)).scalar() == "wang"
        assert conn.execute(select(notifications.c.status)).scalars().all() == ["cancelled"]
    assert [tuple(a) for a in actions] == [("wang", "acknowledged"), ("wang", "resolved"), ("wang", "marked_real")]


def test_unknown_incident_is_a_clear_error(cfg: Path) -> None:
    out = cli("incidents", "ack", "99", "--config", str(cfg))
    assert out.returncode == 2 and "no incident 99; see `monitor incidents list`" in out.stderr


def test_silences_add_list_expire(cfg: Path) -> None:
    added = cli("silences", "add", "--watch", "鲸帆", "--for", "3h", "--comment", "已回应", "--actor", "li",
                "--config", str(cfg))
    assert added.returncode == 0 and added.stdout.startswith("silence 1 until ")
    listed = cli("silences", "list", "--config", str(cfg))
    assert "watch=鲸帆" in listed.stdout and "by li" in listed.stdout and "已回应" in listed.stdout
    assert cli("silences", "expire", "1", "--config", str(cfg)).returncode == 0
    assert "no silences in force" in cli("silences", "list", "--config", str(cfg)).stdout
    bad = cli("silences", "add", "--for", "1h", "--config", str(cfg))
    assert bad.returncode == 2 and "needs at least one of --watch" in bad.stderr
    past = cli("silences", "add", "--watch", "鲸帆", "--until", (NOW - timedelta(hours=1)).isoformat(),
               "--config", str(cfg))
    assert past.returncode == 2 and "would end before it starts" in past.stderr


def test_outbox_list_and_retry(cfg: Path) -> None:
    engine = make_engine(f"sqlite:///{cfg.parent / 'monitor.db'}")
    with engine.begin() as conn:
        conn.execute(notifications.update().values(status="failed", last_error="HTTP 500 from 127.0.0.1:9"))
    out = cli("outbox", "list", "--config", str(cfg))
    assert "failed" in out.stdout and "ops" in out.stdout and "HTTP 500" in out.stdout
    again = cli("outbox", "retry", "--config", str(cfg))
    assert again.returncode == 0 and again.stdout.strip() == "1 notification(s) queued again"
    with engine.connect() as conn:
        assert conn.execute(select(notifications.c.status)).scalars().all() == ["pending"]


def test_help_of_the_new_commands() -> None:
    for args in (["incidents", "--help"], ["incidents", "resolve", "--help"], ["silences", "add", "--help"],
                 ["outbox", "list", "--help"]):
        out = cli(*args)
        assert out.returncode == 0 and "Usage:" in out.stdout, args


def test_outbox_test_sends_one_message_and_reports_failure(tmp_path: Path) -> None:
    from tests.receiver import Receiver

    receiver = Receiver().start()
    try:
        path = tmp_path / "config.yaml"
        path.write_text(f"""channels:
  - {{name: ok, type: webhook, url: '{receiver.url}/hook'}}
  - {{name: dead, type: webhook, url: 'http://127.0.0.1:9/hook', timeout: 2s}}
""", encoding="utf-8")
        out = cli("outbox", "test", "ok", "--config", str(path))
        assert out.returncode == 0 and out.stdout.strip() == "sent a test message to ok"
        [got] = receiver.received
        assert got.json()["kind"] == "test" and "测试消息" in got.json()["message"]["title"]
        bad = cli("outbox", "test", "dead", "--config", str(path))
        assert bad.returncode == 1 and bad.stderr.startswith("failed: ") and "127.0.0.1" in bad.stderr
        missing = cli("outbox", "test", "nope", "--config", str(path))
        assert missing.returncode == 2 and "no channel named 'nope'; configured: ok, dead" in missing.stderr
    finally:
        receiver.stop()
