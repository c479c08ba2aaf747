"""The console API of the reply scripts, follow-up, compensation and outcome, on SQLite and PostgreSQL, through
httpx's ASGI transport: answers, the new ticket fields and who may do what."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import Engine

from alerts.queue import TicketQueue
from monitor.clock import ManualClock
from monitor.config import Config
from monitor.web.app import create_app
from tests.test_progress import config_for
from tests.test_queue_store import T0, new_engine
from tests.test_scripts import portal_ticket
from tests.test_web_api import bearer, run


@pytest.fixture
def app_ticket(db_url: str) -> Iterator[tuple[Any, Engine, Config, int]]:
    """The app over a database with one product-quality complaint ticket in 受理."""
    engine = new_engine(db_url)
    config = config_for(db_url)
    tid = portal_ticket(engine, TicketQueue(engine, config))
    yield create_app(config, engine, clock=ManualClock(T0 + timedelta(hours=1))), engine, config, tid
    engine.dispose()


def test_suggest_reply_and_roles(app_ticket: tuple[Any, Engine, Config, int]) -> None:
    """A viewer reads suggestions but cannot reply; a handler's reply is recorded and is the first response."""
    app, _engine, _config, tid = app_ticket

    async def scenario(c: httpx.AsyncClient) -> None:
        got = (await c.get(f"/api/tickets/{tid}/scripts", headers=bearer("viewer"))).json()
        assert got["state"] == "accepted" and got["items"]
        first = got["items"][0]
        assert {"key", "version", "stage", "title", "text", "score", "uses", "category"} <= set(first)
        assert first["stage"] in ("acknowledge", "apology") and "{ticket}" not in first["text"]
        assert "T20261123-0001" in first["text"]
        assert (await c.get("/api/tickets/999/scripts", headers=bearer("viewer"))).status_code == 404
        body = {"script_key": first["key"], "version": first["version"], "text": first["text"] + "（已改）"}
        denied = await c.post(f"/api/tickets/{tid}/reply", headers=bearer("viewer"), json=body)
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
        done = await c.post(f"/api/tickets/{tid}/reply", headers=bearer("handler"), json=body)
        assert done.status_code == 200, done.text
        ticket = done.json()
        assert ticket["responded_at"] is not None and ticket["sla"]["respond"]["met_at"] is not None
        assert ticket["events"][-1]["note"] == "已回复：" + body["text"]
        assert ticket["events"][-1]["actor"] == "token:handler-bot"
        bad = await c.post(f"/api/tickets/{tid}/reply", headers=bearer("handler"),
                           json={"script_key": "no-such", "text": "x"})
        assert bad.status_code == 422
        assert (await c.post("/api/tickets/999/reply", headers=bearer("handler"),
                             json={"text": "x"})).status_code == 404
        # The choice counts for the next suggestion of this category.
        again = (await c.get(f"/api/tickets/{tid}/scripts", headers=bearer("viewer"))).json()["items"]
        assert next(s for s in again if s["key"] == first["key"])["uses"] == 1

    run(app, scenario)


def test_script_library_admin(app_ticket: tuple[Any, Engine, Config, int]) -> None:
    """Everyone reads the library; only an admin writes a version or retires a script."""
    app, _engine, _config, _tid = app_ticket

    async def scenario(c: httpx.AsyncClient) -> None:
        listed = (await c.get("/api/scripts", headers=bearer("viewer"))).json()["items"]
        assert len(listed) == 20 and all(s["active"] for s in listed)
        new = {"key": "pq-apology", "category": "product_quality", "stage": "apology", "title": "致歉 v2",
               "body": "{name}您好，抱歉。工单 {ticket}"}
        assert (await c.post("/api/scripts", headers=bearer("handler"), json=new)).status_code == 403
        saved = (await c.post("/api/scripts", headers=bearer("admin"), json=new)).json()
        assert (saved["key"], saved["version"], saved["created_by"]) == ("pq-apology", 2, "token:admin-bot")
        assert saved["created_at"].endswith("+08:00")
        bad = await c.post("/api/scripts", headers=bearer("admin"), json={**new, "body": "{nmae}"})
        assert bad.status_code == 422 and "placeholder" in bad.json()["error"]
        versions = (await c.get("/api/scripts?versions=1", headers=bearer("viewer"))).json()["items"]
        assert [s["version"] for s in versions if s["key"] == "pq-apology"] == [2, 1]
        assert (await c.post("/api/scripts/pq-apology/deactivate", headers=bearer("handler"))).status_code == 403
        retired = (await c.post("/api/scripts/pq-apology/deactivate", headers=bearer("admin"))).json()
        assert retired["active"] is False
        assert "pq-apology" not in {s["key"] for s in (await c.get("/api/scripts", headers=bearer("viewer"))).json()[
            "items"]}
        assert "pq-apology" in {s["key"] for s in (await c.get("/api/scripts?inactive=1", headers=bearer(
            "viewer"))).json()["items"]}
        assert (await c.post("/api/scripts/nope/deactivate", headers=bearer("admin"))).status_code == 404

    run(app, scenario)


def test_followup_compensation_outcome(app_ticket: tuple[Any, Engine, Config, int]) -> None:
    """The three records through the API, the new ticket fields, 409 out of order, 403 for a viewer."""
    app, engine, config, tid = app_ticket

    async def scenario(c: httpx.AsyncClient) -> None:
        got = (await c.get(f"/api/tickets/{tid}", headers=bearer("viewer"))).json()
        assert {k: got[k] for k in ("nps", "followup_at", "compensation", "withdrawn", "outcome_note",
                                    "incomplete")} == {"nps": None, "followup_at": None, "compensation": [],
                                                       "withdrawn": None, "outcome_note": None,
                                                       "incomplete": False}
        listed = (await c.get("/api/tickets", headers=bearer("viewer"))).json()["items"]
        assert listed[0]["compensation"] == [] and listed[0]["incomplete"] is False
        for path, body in (("followup", {"satisfaction": 4}), ("compensation", {"kind": "refund", "amount": 1}),
                           ("outcome", {"withdrawn": True})):
            assert (await c.post(f"/api/tickets/{tid}/{path}", headers=bearer("viewer"), json=body)).status_code == 403
        early = await c.post(f"/api/tickets/{tid}/followup", headers=bearer("handler"), json={"satisfaction": 4})
        assert early.status_code == 409
        comp = (await c.post(f"/api/tickets/{tid}/compensation", headers=bearer("handler"),
                             json={"kind": "refund", "amount": "88.8", "note": "原路退回"})).json()
        assert [(x["kind"], x["amount"], x["currency"], x["by"]) for x in comp["compensation"]] == [
            ("refund", "88.80", "CNY", "token:handler-bot")]
        assert (await c.post(f"/api/tickets/{tid}/compensation", headers=bearer("handler"),
                             json={"kind": "cash"})).status_code == 409
        assert (await c.post(f"/api/tickets/{tid}/compensation", headers=bearer("handler"),
                             json={"kind": "refund", "amount": "-5"})).status_code == 409
        outcome = (await c.post(f"/api/tickets/{tid}/outcome", headers=bearer("handler"),
                                json={"withdrawn": True, "note": "已撤诉"})).json()
        assert (outcome["withdrawn"], outcome["outcome_note"]) == (True, "已撤诉")
        queue = TicketQueue(engine, config)
        for state in ("verifying", "handling", "follow_up"):
            queue.move(tid, state, actor="amy", now=T0 + timedelta(minutes=30))
        assert (await c.post(f"/api/tickets/{tid}/followup", headers=bearer("handler"),
                             json={"satisfaction": 5, "nps": 11})).status_code == 422
        done = (await c.post(f"/api/tickets/{tid}/followup", headers=bearer("handler"),
                             json={"satisfaction": 5, "nps": 9, "note": "满意"})).json()
        assert (done["state"], done["satisfaction"], done["nps"]) == ("closed", 5, 9)
        assert done["followup_at"].endswith("+08:00") and done["incomplete"] is False
        assert [e["action"] for e in done["events"]][-2:] == ["move", "nps"]

    run(app, scenario)


def test_closed_without_followup_shows_incomplete(app_ticket: tuple[Any, Engine, Config, int]) -> None:
    """Closing a ticket as a duplicate leaves it without 回访: ``incomplete`` is true."""
    app, _engine, _config, tid = app_ticket

    async def scenario(c: httpx.AsyncClient) -> None:
        closed = (await c.post(f"/api/tickets/{tid}/move", headers=bearer("handler"),
                               json={"state": "closed", "note": "重复"})).json()
        assert closed["incomplete"] is True

    run(app, scenario)


def test_openapi_lists_the_new_routes(app_ticket: tuple[Any, Engine, Config, int]) -> None:
    """The new endpoints are in the schema with summaries; the public page itself is not."""
    app, _engine, _config, _tid = app_ticket

    async def scenario(c: httpx.AsyncClient) -> None:
        paths = (await c.get("/api/openapi.json", headers=bearer("viewer"))).json()["paths"]
        for path in ("/api/tickets/{ref}/scripts", "/api/tickets/{ref}/reply", "/api/scripts",
                     "/api/scripts/{key}/deactivate", "/api/tickets/{ref}/followup",
                     "/api/tickets/{ref}/compensation", "/api/tickets/{ref}/outcome",
                     "/api/tickets/{ref}/progress-link", "/api/public/progress/{token}"):
            assert path in paths, path
            assert all(op.get("summary") for op in paths[path].values()), path
        assert "/p/{token}" not in paths
        # The console shell answers /scripts like its other pages.
        shell = await c.get("/scripts")
        assert shell.status_code == 200 and "/static/app.js" in shell.text

    run(app, scenario)
