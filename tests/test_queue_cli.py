"""``monitor tickets`` and ``monitor report`` through click's runner, on a seeded SQLite database.

Tickets are registered in January 2020, so whatever the wall clock says they are long overdue: nothing here
depends on when the test runs.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from alerts.queue import TicketQueue
from monitor.cli import main
from monitor.config import load_config
from tests.test_queue_store import add_incident, add_posts, complaint_posts, new_engine

#: Monday 2020-01-06 10:00 in Shanghai.
PAST = datetime(2020, 1, 6, 2, 0, tzinfo=UTC)


@pytest.fixture
def cfg(tmp_path: Path) -> Path:
    """A config file and its database with two tickets: T20200106-0001 (orange) and -0002 (red, a hostile title)."""
    db = tmp_path / "m.db"
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {{url: 'sqlite:///{db}'}}\nalerts: {{console_url: 'https://c.example'}}\n",
                    encoding="utf-8")
    engine = new_engine(f"sqlite:///{db}")
    uids = add_posts(engine, "weibo", complaint_posts(), at=PAST)
    first = add_incident(engine, 1, uids, opened_at=PAST)
    second = add_incident(engine, 2, uids[3:4], severity="red", title="<b>客服</b> | 态度", keys=("topic:x",),
                          opened_at=PAST)
    queue = TicketQueue(engine, load_config(path))
    with engine.begin() as conn:
        queue.open_for_incident(conn, first, PAST)
        queue.open_for_incident(conn, second, PAST + timedelta(minutes=1))
    engine.dispose()
    return path


def run(cfg: Path, *args: str, user: str = "tester") -> Result:
    """``monitor ARGS --config CFG`` with $USER set."""
    return CliRunner().invoke(main, [*args, "--config", str(cfg)], env={"USER": user})


def test_list(cfg: Path) -> None:
    """Overdue, red first; filters by state (Chinese labels too), severity, overdue; JSON lines."""
    out = run(cfg, "tickets", "list")
    assert out.exit_code == 0, out.output
    lines = out.stdout.splitlines()
    assert lines[0].startswith("T20200106-0002  红色  受理  未分配  超时:受理 ")
    assert lines[1].startswith("T20200106-0001  橙色  受理  未分配  超时:受理 ")
    assert "2 ticket(s)" in out.stderr
    as_json = [json.loads(x) for x in run(cfg, "tickets", "list", "--json", "--severity", "orange").stdout.splitlines()]
    assert [t["number"] for t in as_json] == ["T20200106-0001"]
    assert as_json[0]["sla"]["acknowledge"]["overdue_seconds"] > 0
    assert run(cfg, "tickets", "list", "--state", "核实").stdout.strip() == "no tickets matching the filters"
    bad = run(cfg, "tickets", "list", "--state", "done")
    assert bad.exit_code == 2 and "未知状态" in bad.stderr


def test_show(cfg: Path) -> None:
    """show by number or id: registration, deadlines, history; --json; unknown ticket exits 2."""
    out = run(cfg, "tickets", "show", "T20200106-0001")
    assert out.exit_code == 0, out.output
    text = out.stdout
    assert "T20200106-0001  (#1)  【橙色】 澄星 · 漏水 售后" in text
    assert "状态      受理 (accepted)" in text and "诉求      要求退款并赔偿损失" in text
    assert "受理     截止 2020-01-06 12:00  已超时" in text
    assert "2020-01-06 10:00  system  create →受理  登记自 incident #1" in text
    data = json.loads(run(cfg, "tickets", "show", "2", "--json").stdout)
    assert data["number"] == "T20200106-0002" and data["title"] == "<b>客服</b> | 态度"
    missing = run(cfg, "tickets", "show", "T20990101-0001")
    assert missing.exit_code == 2 and "monitor tickets list --all" in missing.stderr


def test_move_assign_note_respond(cfg: Path) -> None:
    """Actions record the actor ($USER by default or --actor); Chinese state labels work; refused moves exit 2
    with the allowed targets and change nothing."""
    assert run(cfg, "tickets", "assign", "1", "amy").stdout.strip() == "T20200106-0001: assigned to amy"
    out = run(cfg, "tickets", "move", "T20200106-0001", "核实", "--actor", "bob")
    assert out.exit_code == 0 and out.stdout.strip() == "T20200106-0001: 核实 (verifying)"
    refused = run(cfg, "tickets", "move", "1", "回访")
    assert refused.exit_code == 2
    assert "可转到：处理、关闭" in refused.stderr and "allowed: handling, closed" in refused.stderr
    no_note = run(cfg, "tickets", "move", "1", "closed")
    assert no_note.exit_code == 2 and "--note" in no_note.stderr
    assert run(cfg, "tickets", "note", "1", "已电话联系").exit_code == 0
    assert run(cfg, "tickets", "respond", "1", "已致歉并安排上门", user="carol").exit_code == 0
    data = json.loads(run(cfg, "tickets", "show", "1", "--json").stdout)
    assert data["state"] == "verifying" and data["assignee"] == "amy"
    assert [(e["action"], e["actor"]) for e in data["events"]] == [
        ("create", "system"), ("assign", "tester"), ("move", "bob"), ("note", "tester"), ("respond", "carol")]
    assert data["responded_at"] is not None and data["acknowledged_at"] is not None


def test_followup_and_reopen(cfg: Path) -> None:
    """The follow-up closes with a satisfaction score; reopen needs a reason and puts the ticket back to 处理."""
    for state in ("verifying", "handling", "follow_up"):
        assert run(cfg, "tickets", "move", "1", state).exit_code == 0
    out = run(cfg, "tickets", "followup", "1", "--satisfaction", "5", "--note", "满意")
    assert out.exit_code == 0 and "satisfaction 5/5, 关闭 (closed)" in out.stdout
    assert run(cfg, "tickets", "reopen", "1").exit_code == 2  # --note is required
    out = run(cfg, "tickets", "reopen", "1", "--note", "再次投诉")
    assert out.exit_code == 0 and "处理 (handling) (reopened 1 time(s))" in out.stdout


def test_report(cfg: Path, tmp_path: Path) -> None:
    """report --weekly to an HTML file, --daily Markdown to stdout; bad options exit 2 saying what to write."""
    target = tmp_path / "week.html"
    out = run(cfg, "report", "--weekly", "--date", "2020-01-08", "--format", "html", "--output", str(target))
    assert out.exit_code == 0, out.output
    page = target.read_text(encoding="utf-8")
    assert "<title>舆情周报 2020-01-06 至 2020-01-12</title>" in page
    assert "&lt;b&gt;客服&lt;/b&gt;" in page and "<b>客服</b>" not in page
    daily = run(cfg, "report", "--daily", "--date", "2020-01-06")
    assert daily.exit_code == 0
    assert daily.stdout.startswith("# 舆情日报 2020-01-06\n") and "| weibo | 5 | 5 | 100.0% |" in daily.stdout
    assert "| 受理 | 2 | 0 | 0.0% |" in daily.stdout
    bad = run(cfg, "report", "--date", "6.1.2020")
    assert bad.exit_code == 2 and "2026-11-23" in bad.stderr
    both = run(cfg, "report", "--daily", "--weekly")
    assert both.exit_code == 2 and "not both" in both.stderr


def test_help() -> None:
    """--help works on every queue command."""
    for args in (["tickets", "--help"], ["tickets", "list", "--help"], ["tickets", "show", "--help"],
                 ["tickets", "move", "--help"], ["tickets", "assign", "--help"], ["tickets", "note", "--help"],
                 ["tickets", "respond", "--help"], ["tickets", "followup", "--help"], ["tickets", "reopen", "--help"],
                 ["tickets", "ack", "--help"], ["tickets", "check-sla", "--help"], ["report", "--help"]):
        out = CliRunner().invoke(main, args)
        assert out.exit_code == 0 and "Usage:" in out.output, args
