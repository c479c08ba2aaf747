"""Personal data through the console's API on SQLite and PostgreSQL: viewers see it masked, handlers see it (and
leave a throttled audit row), admins export and erase a person; other roles are refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine, select

from alerts.queue import TicketQueue
from monitor.clock import ManualClock
from monitor.config import Config
from monitor.crypto import new_key
from monitor.db.schema import audit_log, posts, sources, tickets
from monitor.web.app import create_app
from tests.test_queue_store import T0, add_incident, add_posts, new_engine
from tests.test_web_api import bearer, make_config, run

PHONE = "13812345678"
ID_CARD = "11010519491231002X"


def seed(engine: Engine, config: Config) -> dict[str, int]:
    """An incident whose posts carry a phone number (its ticket), and a portal ticket of 消费者A."""
    uids = add_posts(engine, "weibo", [
        {"id": "1", "text": f"澄星热水器漏水，电话{PHONE}，要求退款", "author": "张三"},
        {"id": "2", "text": f"同样漏水，身份证{ID_CARD}都登记了", "author": "李四"},
        {"id": "3", "text": "澄星客服态度差", "author": "消费者A"}])
    add_posts(engine, "heimao", [{"id": "9", "title": "澄星漏水", "text": f"澄星漏水，联系我{PHONE}",
                                  "author": "消费者A", "url": f"https://heimao.example/9?tel={PHONE}"}])
    row = add_incident(engine, 1, uids, title=f"澄星 · 漏水 {PHONE}", authors=["张三", "李四", "消费者A"])
    portal_config = config.model_copy(update={"queue": config.queue.model_copy(
        update={"portal": config.queue.portal.model_copy(update={"sources": ["heimao"]})})})
    queue = TicketQueue(engine, portal_config)
    with engine.begin() as conn:
        incident_ticket = queue.open_for_incident(conn, row, T0)
        prow = conn.execute(select(posts, sources.c.name.label("source_name"))
                            .join(sources, posts.c.source_id == sources.c.id).where(sources.c.name == "heimao")).one()
        portal_ticket = queue.open_for_post(conn, prow, T0)
    assert incident_ticket and portal_ticket
    return {"incident": incident_ticket, "portal": portal_ticket}


@pytest.fixture
def world(db_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, Engine, dict[str, int], ManualClock]]:
    """The app over a seeded database with the data key set (tickets encrypted at rest)."""
    monkeypatch.setenv("MONITOR_DATA_KEY", new_key())
    config = make_config(db_url, "watches: [{name: acme, any: [澄星]}]\nqueue: {min_severity: blue}\n")
    engine = new_engine(db_url)
    ids = seed(engine, config)
    clock = ManualClock(T0 + timedelta(hours=1))
    yield create_app(config, engine, clock=clock), engine, ids, clock
    engine.dispose()


def audit_rows(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(audit_log).order_by(audit_log.c.id)).all())


def test_viewer_sees_masked_handler_sees_plain_and_is_audited(
        world: tuple[Any, Engine, dict[str, int], ManualClock]) -> None:
    app, engine, ids, clock = world
    portal = ids["portal"]

    async def scenario(c: httpx.AsyncClient) -> None:
        # -- viewer: masked everywhere, nothing audited
        t = (await c.get(f"/api/tickets/{portal}", headers=bearer("viewer"))).json()
        assert PHONE not in str(t) and "138****5678" in t["content"]
        assert t["complainant"] == "消费者A"  # a handle is not a contact: it stays
        assert t["evidence"] == ["https://heimao.example/9?tel=***"]
        listed = (await c.get("/api/tickets", headers=bearer("viewer"))).json()
        assert PHONE not in str(listed) and ID_CARD not in str(listed)
        inc = (await c.get("/api/incidents/1", headers=bearer("viewer"))).json()
        assert PHONE not in str(inc) and ID_CARD not in str(inc)
        assert {p["author"] for p in inc["posts"]} == {"张三", "李四", "消费者A"}
        assert any("110105********002X" in p["text"] for p in inc["posts"])
        report = await c.get("/api/reports/daily?date=2026-11-23&format=markdown", headers=bearer("viewer"))
        assert report.status_code == 200 and PHONE not in report.text
        assert audit_rows(engine) == []

        # -- handler: plaintext (decrypted from the database), one audit row per ticket per 10 minutes
        t = (await c.get(f"/api/tickets/{portal}", headers=bearer("handler"))).json()
        assert PHONE in t["content"] and t["evidence"] == [f"https://heimao.example/9?tel={PHONE}"]
        report = await c.get("/api/reports/daily?date=2026-11-23&format=markdown", headers=bearer("handler"))
        assert PHONE in report.text
        for _ in range(3):  # the console polls
            await c.get(f"/api/tickets/{portal}", headers=bearer("handler"))
        rows = audit_rows(engine)
        assert [(r.action, r.subject, r.actor, r.role) for r in rows] == [
            ("view", f"ticket:{portal}", "token:handler-bot", "handler")]
        assert rows[0].address  # the client's address
        clock.advance(11 * 60)
        await c.get(f"/api/tickets/{portal}", headers=bearer("handler"))
        inc = (await c.get("/api/incidents/1", headers=bearer("handler"))).json()
        assert PHONE in str(inc)
        await c.get("/api/tickets", headers=bearer("admin"))
        subjects = [(r.subject, r.actor) for r in audit_rows(engine)[1:]]
        assert subjects == [(f"ticket:{portal}", "token:handler-bot"),
                            (f"ticket:{ids['incident']}", "token:handler-bot"), ("tickets", "token:admin-bot")]
    run(app, scenario)

    with engine.connect() as conn:  # at rest: ciphertext only
        raw = conn.execute(select(tickets.c.content, tickets.c.demand, tickets.c.evidence)).all()
    assert PHONE not in repr(raw)


def test_admin_exports_and_deletes_a_person(world: tuple[Any, Engine, dict[str, int], ManualClock]) -> None:
    app, _engine, ids, _clock = world

    async def scenario(c: httpx.AsyncClient) -> None:
        for role in ("viewer", "handler"):
            for call in (c.get("/api/privacy/audit", headers=bearer(role)),
                         c.get("/api/privacy/export?person=消费者A", headers=bearer(role)),
                         c.post("/api/privacy/delete", json={"person": "消费者A"}, headers=bearer(role))):
                denied = await call
                assert denied.status_code == 403 and denied.json()["code"] == "forbidden"

        doc = (await c.get("/api/privacy/export", params={"person": "消费者A"}, headers=bearer("admin"))).json()
        assert sorted(p["uid"] for p in doc["posts"]) == ["heimao:9", "weibo:3"]
        by_number = {t["id"]: t for t in doc["tickets"]}
        assert set(by_number) == {ids["incident"], ids["portal"]}
        assert by_number[ids["portal"]]["sole_complainant"] and PHONE in by_number[ids["portal"]]["content"]
        assert not by_number[ids["incident"]]["sole_complainant"]
        assert [i["id"] for i in doc["incidents"]] == [1]
        only_heimao = (await c.get("/api/privacy/export", params={"person": "消费者A", "source": "heimao"},
                                   headers=bearer("admin"))).json()
        assert [p["uid"] for p in only_heimao["posts"]] == ["heimao:9"]

        bad = await c.post("/api/privacy/delete", json={"person": ""}, headers=bearer("admin"))
        assert bad.status_code == 422
        gone = (await c.post("/api/privacy/delete", json={"person": "消费者A"}, headers=bearer("admin"))).json()
        assert gone["posts_deleted"] == 2 and gone["tickets_erased"] == 1 and gone["tickets_name_removed"] == 1

        portal = (await c.get(f"/api/tickets/{ids['portal']}", headers=bearer("admin"))).json()
        assert (portal["complainant"], portal["content"], portal["demand"], portal["evidence"]) == ("", "", "", [])
        assert portal["number"] and portal["events"]  # the ticket and its history stay
        shared = (await c.get(f"/api/tickets/{ids['incident']}", headers=bearer("admin"))).json()
        assert "消费者A" not in shared["complainant"] and "[已删除]" in shared["complainant"]
        assert "张三" in shared["complainant"]
        again = (await c.get("/api/privacy/export", params={"person": "消费者A"}, headers=bearer("admin"))).json()
        assert again["posts"] == [] and again["tickets"] == [] and again["incidents"] == []

        log = (await c.get("/api/privacy/audit?since=30d", headers=bearer("admin"))).json()["items"]
        actions = [(e["action"], e["subject"]) for e in log]
        assert ("delete", "person:消费者A") in actions and actions.count(("export", "person:消费者A")) == 3
        assert all(e["actor"] == "token:admin-bot" and e["role"] == "admin" for e in log if e["action"] != "view")
        only = (await c.get("/api/privacy/audit?action=delete", headers=bearer("admin"))).json()["items"]
        assert [e["action"] for e in only] == ["delete"]
    run(app, scenario)
