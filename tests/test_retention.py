"""Retention (monitor/retention.py) on SQLite and PostgreSQL: old raw posts go except those of open incidents and
open tickets; old closed tickets lose their personal fields but keep their history; every purge is audited."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from sqlalchemy import Engine, func, select, update

from alerts.queue import TicketQueue
from monitor.cli import main
from monitor.config import Config
from monitor.db.schema import audit_log, incidents, posts, sources, ticket_events, tickets
from monitor.privacy_config import PrivacyConfig
from monitor.retention import purge
from tests.test_queue_store import T0, add_incident, add_posts, make_config, new_engine

OLD = T0 - timedelta(days=100)
NOW = T0


def config(**privacy: Any) -> Config:
    base = make_config(portal={"sources": ["heimao"], "watches": ["acme"]})
    return base.model_copy(update={"privacy": PrivacyConfig(**privacy)})


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    eng = new_engine(db_url)
    yield eng
    eng.dispose()


def seed(engine: Engine) -> dict[str, int]:
    """Old posts: of an open incident (1), of a resolved incident with an open ticket (2), of a resolved incident
    without one (3), a portal item with an open ticket, and unattached ones; one recent post. Tickets: closed 100
    and 10 days ago, and open ones."""
    cfg = config()
    queue = TicketQueue(engine, cfg)
    old = add_posts(engine, "weibo", [{"id": f"o{i}", "text": f"澄星漏水 {i}", "author": f"a{i}",
                                       "published_at": OLD} for i in range(8)], at=OLD)
    add_posts(engine, "weibo", [{"id": "new", "text": "澄星漏水 新", "author": "n", "published_at": NOW}], at=NOW)
    portal = add_posts(engine, "heimao", [{"id": "p1", "text": "澄星漏水拒不退款，电话13812345678", "author": "消费者A",
                                           "published_at": OLD}], at=OLD)
    inc_open = add_incident(engine, 1, old[0:2], opened_at=OLD, keys=("topic:a",))
    inc_ticket = add_incident(engine, 2, old[2:4], opened_at=OLD, keys=("topic:b",), keywords=("b",))
    inc_done = add_incident(engine, 3, old[4:6], opened_at=OLD, keys=("topic:c",), keywords=("c",))
    ids: dict[str, int] = {}
    with engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id.in_([2, 3])).values(status="resolved"))
        ids["open_incident_ticket"] = queue.open_for_incident(conn, inc_ticket, OLD) or 0
        ids["closed_long_ago"] = queue.open_for_incident(conn, inc_done, OLD) or 0
        ids["open_first"] = queue.open_for_incident(conn, inc_open, OLD) or 0
        prow = conn.execute(select(posts, sources.c.name.label("source_name"))
                            .join(sources, posts.c.source_id == sources.c.id).where(sources.c.name == "heimao")).one()
        ids["portal_open"] = queue.open_for_post(conn, prow, OLD) or 0
        assert all(ids.values()) and portal
        conn.execute(update(tickets).where(tickets.c.id == ids["closed_long_ago"]).values(
            state="closed", closed_at=NOW - timedelta(days=100)))
        conn.execute(update(tickets).where(tickets.c.id == ids["open_first"]).values(
            state="closed", closed_at=NOW - timedelta(days=10)))
    return ids


def uids(engine: Engine) -> set[str]:
    with engine.connect() as conn:
        return {f"{s}:{n}" for s, n in conn.execute(select(sources.c.name, posts.c.native_id)
                                                    .join(sources, posts.c.source_id == sources.c.id))}


def ticket(engine: Engine, tid: int) -> dict[str, Any]:
    with engine.connect() as conn:
        return dict(conn.execute(select(tickets).where(tickets.c.id == tid)).one()._mapping)


def audit_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_log).order_by(audit_log.c.id)).all())


def test_purge_keeps_posts_of_open_incidents_and_tickets(engine: Engine) -> None:
    ids = seed(engine)
    before = uids(engine)
    cfg = config(retention_posts_days=30, retention_personal_days=90)

    dry = purge(engine, cfg, NOW, dry_run=True)
    assert dry["posts_deleted"] == 4 and dry["tickets_erased"] == 1 and dry["dry_run"] is True
    assert uids(engine) == before and audit_rows(engine) == []

    got = purge(engine, cfg, NOW)
    after = uids(engine)
    # Gone: o4, o5 (resolved incident without ticket... whose ticket is closed), o6, o7 (attached to nothing).
    assert before - after == {"weibo:o4", "weibo:o5", "weibo:o6", "weibo:o7"}
    # Kept: the open incident's posts, the posts of an incident whose ticket is open, the open portal ticket's
    # item, and the recent post.
    assert {"weibo:o0", "weibo:o1", "weibo:o2", "weibo:o3", "heimao:p1", "weibo:new"} <= after
    assert got["posts_deleted"] == 4 and got["posts_kept"] == 5 and got["tickets_erased"] == 1

    erased = ticket(engine, ids["closed_long_ago"])
    assert (erased["complainant"], erased["content"], erased["demand"], erased["evidence"]) == ("", "", "", None)
    assert erased["number"] and erased["state"] == "closed" and erased["title"]
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(ticket_events)
                            .where(ticket_events.c.ticket_id == ids["closed_long_ago"])).scalar_one() >= 1
    recent = ticket(engine, ids["open_first"])  # closed 10 days ago: kept
    assert recent["complainant"] and recent["content"]
    assert ticket(engine, ids["portal_open"])["content"]

    (row,) = audit_rows(engine)
    assert (row.action, row.subject, row.actor, row.role) == ("purge", "retention", "retention", "system")
    detail = json.loads(row.detail)
    assert detail["posts_deleted"] == 4 and detail["tickets_erased"] == 1

    again = purge(engine, cfg, NOW)  # idempotent: nothing more to do, still audited
    assert again["posts_deleted"] == 0 and again["tickets_erased"] == 0 and len(audit_rows(engine)) == 2


def test_nothing_configured_does_nothing(engine: Engine) -> None:
    seed(engine)
    before = uids(engine)
    assert purge(engine, config(), NOW) == {}
    assert uids(engine) == before and audit_rows(engine) == []


def test_erasure_of_encrypted_tickets(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """Encrypted personal fields are erased the same way (the ciphertext goes)."""
    from monitor.crypto import new_key

    monkeypatch.setenv("MONITOR_DATA_KEY", new_key())
    ids = seed(engine)
    assert ticket(engine, ids["closed_long_ago"])["content"].startswith("enc1:")
    got = purge(engine, config(retention_personal_days=90), NOW)
    assert got == {"dry_run": False, "tickets_closed_before": (NOW - timedelta(days=90)).isoformat(),
                   "tickets_erased": 1}
    t = TicketQueue(engine, config()).get(ids["closed_long_ago"], now=NOW)
    assert t is not None and (t.complainant, t.content, t.demand, t.evidence) == ("", "", "", ())


def test_cli_purge(tmp_path: Path) -> None:
    """`monitor privacy purge --dry-run` counts; without it, purges and audits."""
    db = tmp_path / "m.db"
    path = tmp_path / "config.yaml"
    path.write_text(f"database: {{url: 'sqlite:///{db}'}}\n"
                    "privacy: {retention_posts_days: 30, retention_personal_days: 90}\n", encoding="utf-8")
    engine = new_engine(f"sqlite:///{db}")
    seed(engine)
    runner = CliRunner()
    dry = runner.invoke(main, ["privacy", "purge", "--dry-run", "--config", str(path)], env={"USER": "amy"})
    assert dry.exit_code == 0, dry.output
    assert json.loads(dry.output)["dry_run"] is True and audit_rows(engine) == []
    # The wall clock is later than T0: everything old is older still; the counts are what matter here.
    done = runner.invoke(main, ["privacy", "purge", "--config", str(path)], env={"USER": "amy"})
    assert done.exit_code == 0, done.output
    (row,) = audit_rows(engine)
    assert row.action == "purge" and row.actor == "amy" and row.role == "cli"
    listed = runner.invoke(main, ["privacy", "audit", "--since", "3650d", "--config", str(path)])
    assert "purge" in listed.output and "amy (cli)" in listed.output
    engine.dispose()


def test_the_daemons_maintenance_job_purges(engine: Engine, caplog: pytest.LogCaptureFixture) -> None:
    """The 6-hourly `_maintain` job applies retention on the worker thread and logs what it did."""
    import asyncio
    import logging

    from monitor.clock import ManualClock
    from monitor.daemon import Daemon
    from monitor.db import Store

    seed(engine)
    daemon = Daemon(config(retention_posts_days=30, retention_personal_days=90), clock=ManualClock(NOW),
                    store=Store(engine))
    try:
        with caplog.at_level(logging.INFO, logger="monitor"):
            asyncio.run(daemon._maintain())
    finally:
        daemon.worker.shutdown(wait=True)
    assert "weibo:o7" not in uids(engine) and "weibo:o0" in uids(engine)
    assert [r.action for r in audit_rows(engine)] == ["purge"]
    assert any(r.getMessage() == "maintenance.purged" for r in caplog.records)
