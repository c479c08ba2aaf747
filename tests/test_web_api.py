"""The console's JSON API on data made by the real pipeline (``monitor replay`` of a complaint wave), on SQLite and
PostgreSQL, through httpx's ASGI transport. Login, cookies and CSRF against a real server: tests/test_web_auth.py."""

from __future__ import annotations

import asyncio
import io
from collections.abc import Awaitable, Callable, Iterator
from datetime import datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from monitor.clock import ManualClock
from monitor.config import Config, parse_config
from monitor.db import make_engine, upgrade
from monitor.db.schema import incident_posts, incidents, posts, sources
from monitor.replay import replay
from monitor.web.app import create_app
from monitor.web.auth import hash_password
from tests.loopback import LoopbackServer, Response
from tests.test_daemon import rss
from tests.test_replay import T0, stream, write

# Hashed once per session: scrypt costs ~50 ms a hash on purpose.
PASSWORD = "correct horse 电池"
PASSWORD_HASH = hash_password(PASSWORD)
TOKENS = {"viewer": "viewer-token-0123456789", "handler": "handler-token-0123456789",
          "admin": "admin-token-0123456789"}
TOKEN_HASHES = {role: hash_password(token) for role, token in TOKENS.items()}
#: An hour after the replayed wave of complaints (T0 + 2 days), on the stream's own clock.
NOW = T0 + timedelta(days=2, hours=9)
HOSTILE = '<script>alert("x")</script><img src=x onerror="alert(1)">'


def make_config(db_url: str, extra: str = "", sources_yaml: str | None = None) -> Config:
    """A config with the replay's three sources, a user of each role and a token of each role."""
    users = ", ".join(f"{{name: {role}-user, role: {role}, password_hash: '{PASSWORD_HASH}'}}" for role in TOKENS)
    tokens = ", ".join(f"{{name: {role}-bot, role: {role}, token_hash: '{h}'}}" for role, h in TOKEN_HASHES.items())
    srcs = sources_yaml or ("[" + ", ".join(f"{{name: {n}, type: rss, url: 'http://127.0.0.1:9/{n}.xml'}}"
                                            for n in ("heimao", "tieba", "weibo")) + "]")
    return parse_config(f"database: {{url: '{db_url}'}}\ntimezone: Asia/Shanghai\nsources: {srcs}\n"
                        f"web: {{users: [{users}], tokens: [{tokens}]}}\n{extra}")


def seed(db_url: str, tmp_path: Path) -> None:
    """Replay two days of posts with a complaint wave into the database: one incident with its posts."""
    rows = stream()
    replay(parse_config("sources: []\n"), write(tmp_path / "in.jsonl", rows), tmp_path / "out.jsonl",
           db_url=db_url, progress=io.StringIO())


def bearer(role: str) -> dict[str, str]:
    """The Authorization header of the role's API token."""
    return {"Authorization": f"Bearer {TOKENS[role]}"}


Scenario = Callable[[httpx.AsyncClient], Awaitable[None]]


def run(app: Any, scenario: Scenario) -> None:
    """Run ``scenario`` with a client talking to ``app`` in process."""
    async def go() -> None:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://console") as client:
            await scenario(client)
    asyncio.run(go())


@pytest.fixture
def seeded(db_url: str, tmp_path: Path) -> Iterator[tuple[Any, Config]]:
    """The app over a replayed database, its clock an hour after the wave."""
    seed(db_url, tmp_path)
    config = make_config(db_url)
    engine = make_engine(db_url)
    upgrade(engine)
    yield create_app(config, engine, clock=ManualClock(NOW)), config
    engine.dispose()


SUMMARY_KEYS = {"id", "opened_at", "updated_at", "status", "severity", "title", "posts", "authors", "sources",
                "keywords", "watches", "category", "acked_by", "feedback", "ticket_id"}


def test_incident_list_detail_and_actions(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        listed = (await c.get("/api/incidents", headers=bearer("viewer"))).json()["items"]
        assert len(listed) == 1 and set(listed[0]) >= SUMMARY_KEYS
        inc = listed[0]
        assert inc["status"] in ("open", "quiet") and inc["sources"] == ["heimao", "tieba", "weibo"]
        assert inc["opened_at"].endswith("+08:00"), "times in the display timezone"
        assert (await c.get("/api/incidents?status=resolved", headers=bearer("viewer"))).json() == {"items": []}
        iid = inc["id"]
        got = (await c.get(f"/api/incidents/{iid}", headers=bearer("viewer"))).json()
        assert set(got) >= {"incident", "timeline", "posts", "events", "notifications", "ticket"}
        assert any("12315" in r for r in got["incident"]["reasons"]) and any(
            "authors" in r for r in got["incident"]["reasons_en"])
        assert got["timeline"] and set(got["timeline"][0]) >= {"at", "key", "severity", "score", "negatives",
                                                                "posts", "authors", "expected"}
        assert 10 <= len(got["posts"]) <= 200 and got["ticket"] is None
        first = got["posts"][0]
        assert set(first) >= {"uid", "source", "author", "title", "text", "url", "published_at", "negative",
                              "sentiment", "reposts", "comments"}
        assert first["sentiment"] == "negative" and first["uid"].startswith(first["source"] + ":")
        times = [p["published_at"] for p in got["posts"]]
        assert times == sorted(times, reverse=True), "newest first"

        # A viewer reads but may not act.
        denied = await c.post(f"/api/incidents/{iid}/ack", headers=bearer("viewer"), json={})
        assert denied.status_code == 403 and denied.json()["code"] == "forbidden"
        acked = (await c.post(f"/api/incidents/{iid}/ack", headers=bearer("handler"), json={"note": "在跟进"})).json()
        assert acked["incident"]["acked_by"] == "token:handler-bot"
        assert [(e["actor"], e["action"], e["note"]) for e in acked["events"]] == [
            ("token:handler-bot", "acknowledged", "在跟进")]
        marked = (await c.post(f"/api/incidents/{iid}/feedback", headers=bearer("handler"),
                               json={"verdict": "real"})).json()
        assert marked["incident"]["feedback"] == "real"
        bad = await c.post(f"/api/incidents/{iid}/feedback", headers=bearer("handler"), json={"verdict": "maybe"})
        assert bad.status_code == 422 and bad.json()["code"] == "invalid"
        silenced = (await c.post(f"/api/incidents/{iid}/silence", headers=bearer("handler"),
                                 json={"duration": "2h", "comment": "已联系平台"})).json()
        assert silenced["events"][-1]["action"] == "silenced"
        in_force = (await c.get("/api/silences", headers=bearer("viewer"))).json()["items"]
        assert [s["incident_id"] for s in in_force] == [iid]
        assert datetime.fromisoformat(in_force[0]["ends_at"]) == NOW + timedelta(hours=2)

        # The incident gets its ticket on request, which the queue then handles.
        ticketed = (await c.post(f"/api/incidents/{iid}/ticket", headers=bearer("handler"))).json()
        ticket = ticketed["ticket"]
        assert ticket is not None and ticketed["incident"]["ticket_id"] == ticket["id"]
        assert ticket["state"] == "accepted" and ticket["incident_id"] == iid
        again = (await c.post(f"/api/incidents/{iid}/ticket", headers=bearer("handler"))).json()
        assert again["ticket"]["id"] == ticket["id"], "one ticket per incident"
        resolved = (await c.post(f"/api/incidents/{iid}/resolve", headers=bearer("handler"),
                                 json={"note": "已处理", "verdict": "real"})).json()
        assert resolved["incident"]["status"] == "resolved"

    run(app, scenario)


def test_ticket_endpoints(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        iid = (await c.get("/api/incidents", headers=bearer("viewer"))).json()["items"][0]["id"]
        tid = (await c.post(f"/api/incidents/{iid}/ticket", headers=bearer("handler"))).json()["ticket"]["id"]
        items = (await c.get("/api/tickets", headers=bearer("viewer"))).json()["items"]
        assert [t["id"] for t in items] == [tid] and "events" not in items[0]
        number = items[0]["number"]
        by_number = (await c.get(f"/api/tickets/{number}", headers=bearer("viewer"))).json()
        assert by_number["id"] == tid and by_number["events"][0]["action"] == "create"
        sla = by_number["sla"]["acknowledge"]
        assert set(sla) >= {"deadline", "met_at", "overdue"} and sla["deadline"].endswith("+08:00")
        assert (await c.get("/api/tickets?overdue=1", headers=bearer("viewer"))).json()["items"] == []
        assert (await c.get("/api/tickets?state=closed", headers=bearer("viewer"))).json()["items"] == []
        assert (await c.get("/api/tickets?state=bogus", headers=bearer("viewer"))).status_code == 422

        moved = (await c.post(f"/api/tickets/{tid}/move", headers=bearer("handler"),
                              json={"state": "verifying", "note": "核实中"})).json()
        assert moved["state"] == "verifying" and moved["acknowledged_at"] is not None
        refused = await c.post(f"/api/tickets/{tid}/move", headers=bearer("handler"), json={"state": "follow_up"})
        assert refused.status_code == 409 and refused.json()["code"] == "refused"
        assert "不能从" in refused.json()["error"] and "cannot move" in refused.json()["error"]
        assigned = (await c.post(f"/api/tickets/{tid}/assign", headers=bearer("handler"),
                                 json={"assignee": "李四"})).json()
        assert assigned["assignee"] == "李四"
        noted = (await c.post(f"/api/tickets/{tid}/note", headers=bearer("handler"), json={"text": "客户来电"})).json()
        responded = (await c.post(f"/api/tickets/{number}/respond", headers=bearer("handler"),
                                  json={"text": "已回复"})).json()
        assert noted["events"][-1]["action"] == "note" and responded["responded_at"] is not None
        assert responded["sla"]["respond"]["met_at"] is not None
        viewer = await c.post(f"/api/tickets/{tid}/note", headers=bearer("viewer"), json={"text": "x"})
        assert viewer.status_code == 403
        empty = await c.post(f"/api/tickets/{tid}/note", headers=bearer("handler"), json={"text": ""})
        assert empty.status_code == 422

    run(app, scenario)


def test_unknown_ids_are_404(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        h = bearer("admin")
        for method, path in [("GET", "/api/incidents/999"), ("POST", "/api/incidents/999/ack"),
                             ("POST", "/api/incidents/999/resolve"), ("POST", "/api/incidents/999/ticket"),
                             ("GET", "/api/tickets/999"), ("GET", "/api/tickets/T20990101-0001"),
                             ("POST", "/api/tickets/999/assign"), ("DELETE", "/api/silences/999"),
                             ("POST", "/api/sources/nope/test"), ("GET", "/api/nothing-here")]:
            body = {"assignee": "x"} if path.endswith("assign") else None
            r = await c.request(method, path, headers=h, json=body)
            assert r.status_code == 404, (method, path, r.text)
            assert r.json()["code"] == "not_found" and " / " in r.json()["error"]

    run(app, scenario)


def test_dashboard(seeded: tuple[Any, Config]) -> None:
    app, config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        day = (await c.get("/api/dashboard", headers=bearer("viewer"))).json()
        assert set(day) >= {"range", "incidents_by_severity", "open_incidents", "watches", "sources", "outbox",
                            "tickets"}
        assert day["range"] == "24h" and set(day["incidents_by_severity"]) == {"blue", "yellow", "orange", "red"}
        assert sum(day["incidents_by_severity"].values()) == 1 == len(day["open_incidents"])
        [watch] = day["watches"]
        assert watch["name"] == "*" and len(watch["series"]) == 24
        starts = [datetime.fromisoformat(p["t"]) for p in watch["series"]]
        assert all(b - a == timedelta(hours=1) for a, b in pairwise(starts))
        assert starts[-1] <= NOW < starts[-1] + timedelta(hours=1)
        assert sum(p["negatives"] for p in watch["series"]) >= 25, "the wave is in the last 24 hours"
        assert sum(p["posts"] for p in watch["series"]) >= 70
        assert [s["name"] for s in day["sources"]] == ["heimao", "tieba", "weibo"]
        assert day["outbox"] == {"pending": 0, "failed": 0} and day["tickets"] == {"open": 0, "overdue": 0}
        week = (await c.get("/api/dashboard?range=7d", headers=bearer("viewer"))).json()
        series = week["watches"][0]["series"]
        assert len(series) == 28 and datetime.fromisoformat(series[1]["t"]) - datetime.fromisoformat(
            series[0]["t"]) == timedelta(hours=6)
        assert datetime.fromisoformat(series[0]["t"]).hour % 6 == 0
        assert sum(p["posts"] for p in series) == 370, "every replayed post is within the week"
        assert (await c.get("/api/dashboard?range=1y", headers=bearer("viewer"))).status_code == 422

    run(app, scenario)
    assert config.watches == []


def test_dashboard_series_per_watch(tmp_path: Path) -> None:
    """With watches configured, each watch has its own series (the posts matching it)."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    watch = "watches: [{name: 鲸帆, keywords: [鲸帆]}, {name: 天气, keywords: [天气]}]\n"
    replay(parse_config("sources: []\n" + watch), write(tmp_path / "in.jsonl", stream()), tmp_path / "out.jsonl",
           db_url=url, progress=io.StringIO())
    engine = make_engine(url)
    app = create_app(make_config(url, watch), engine, clock=ManualClock(NOW))

    async def scenario(c: httpx.AsyncClient) -> None:
        week = (await c.get("/api/dashboard?range=7d", headers=bearer("viewer"))).json()
        totals = {w["name"]: sum(p["posts"] for p in w["series"]) for w in week["watches"]}
        assert set(totals) == {"鲸帆", "天气"} and totals["鲸帆"] == 70 and 0 < totals["天气"] < 300

    run(app, scenario)
    engine.dispose()


def test_sources_with_posts_per_day(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        items = (await c.get("/api/sources", headers=bearer("viewer"))).json()["items"]
        assert [s["name"] for s in items] == ["heimao", "tieba", "weibo"]
        weibo = items[2]
        assert set(weibo) >= {"name", "type", "status", "enabled", "last_run_at", "last_success_at",
                              "last_failure_at", "consecutive_failures", "last_error", "posts_total",
                              "posts_per_day"}
        days = weibo["posts_per_day"]
        assert len(days) == 7 and days[-1]["date"] == NOW.date().isoformat()
        # The replay's posts were "fetched" when published: three days of them fall in the week.
        assert sum(d["posts"] for s in items for d in s["posts_per_day"]) == 370
        assert weibo["status"] == "ok" and weibo["posts_total"] > 0

    run(app, scenario)


def test_hostile_post_text_comes_back_as_plain_json(tmp_path: Path) -> None:
    """Post text is data: returned verbatim inside JSON (the browser escapes it); the HTML report escapes it."""
    url = f"sqlite:///{tmp_path / 'm.db'}"
    seed(url, tmp_path)
    engine = make_engine(url)
    with engine.begin() as conn:
        uid = conn.execute(select(incident_posts.c.post_uid).limit(1)).scalar_one()
        source, native = uid.split(":", 1)
        sid = conn.execute(select(sources.c.id).where(sources.c.name == source)).scalar_one()
        conn.execute(update(posts).where(posts.c.source_id == sid, posts.c.native_id == native)
                     .values(text=HOSTILE, title=HOSTILE, author=HOSTILE))
        conn.execute(update(incidents).values(title=HOSTILE))
    app = create_app(make_config(url), engine, clock=ManualClock(NOW))

    async def scenario(c: httpx.AsyncClient) -> None:
        r = await c.get("/api/incidents/1", headers=bearer("viewer"))
        assert r.headers["content-type"] == "application/json"
        assert r.headers["x-content-type-options"] == "nosniff"
        hostile = [p for p in r.json()["posts"] if p["uid"] == uid]
        assert hostile and hostile[0]["text"] == HOSTILE and hostile[0]["author"] == HOSTILE
        assert r.json()["incident"]["title"] == HOSTILE
        day = NOW.date().isoformat()
        report = await c.get(f"/api/reports/daily?date={day}&format=html", headers=bearer("viewer"))
        assert report.status_code == 200 and report.headers["content-type"].startswith("text/html")
        assert "<script>" not in report.text and "onerror=" not in report.text.replace("onerror=&quot;", "")
        assert "&lt;script&gt;" in report.text
        assert "script-src" not in report.headers["content-security-policy"], "no script may run in a report"

    run(app, scenario)
    engine.dispose()


def test_reports(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        day = NOW.date().isoformat()
        md = await c.get(f"/api/reports/daily?date={day}&format=markdown", headers=bearer("viewer"))
        assert md.status_code == 200 and md.headers["content-type"].startswith("text/markdown")
        assert md.text.startswith("# 舆情日报") and day in md.text
        weekly = await c.get(f"/api/reports/weekly?date={day}", headers=bearer("viewer"))
        assert weekly.status_code == 200 and "周报" in weekly.text and weekly.text.startswith("<!DOCTYPE html>")
        assert (await c.get("/api/reports/daily", headers=bearer("viewer"))).status_code == 200  # yesterday
        bad = await c.get("/api/reports/daily?date=23/11/2026", headers=bearer("viewer"))
        assert bad.status_code == 422 and "YYYY-MM-DD" in bad.json()["error"]
        assert (await c.get("/api/reports/monthly", headers=bearer("viewer"))).status_code == 422
        assert (await c.get("/api/reports/daily")).status_code == 401

    run(app, scenario)


def test_silences(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        until = (NOW + timedelta(days=1)).isoformat()
        made = await c.post("/api/silences", headers=bearer("handler"),
                            json={"watch": "鲸帆", "keyword": "发烫", "until": until, "comment": "已知问题"})
        assert made.status_code == 200, made.text
        silence = made.json()
        assert silence["watch"] == "鲸帆" and silence["active"] and silence["created_by"] == "token:handler-bot"
        for body in ({"duration": "2h"}, {"watch": "x"}, {"watch": "x", "duration": "soon"},
                     {"watch": "x", "until": "2026-11-05T10:00:00"}, {"watch": "x", "duration": "2h", "bogus": 1}):
            bad = await c.post("/api/silences", headers=bearer("handler"), json=body)
            assert bad.status_code == 422 and bad.json()["code"] == "invalid", body
        assert (await c.post("/api/silences", headers=bearer("viewer"), json={"watch": "x", "duration": "2h"})
                ).status_code == 403
        assert [s["id"] for s in (await c.get("/api/silences", headers=bearer("viewer"))).json()["items"]] == [
            silence["id"]]
        gone = await c.delete(f"/api/silences/{silence['id']}", headers=bearer("handler"))
        assert gone.status_code == 200 and gone.json() == {"ok": True}
        assert (await c.get("/api/silences", headers=bearer("viewer"))).json()["items"] == []
        history = (await c.get("/api/silences?all=1", headers=bearer("viewer"))).json()["items"]
        assert len(history) == 1 and not history[0]["active"]

    run(app, scenario)


def test_source_test_fetches_without_storing(server: LoopbackServer, tmp_path: Path) -> None:
    server.route("/robots.txt", Response(404))
    server.route("/good.xml", Response(200, rss([(str(i), f"第{i}条 {HOSTILE}") for i in range(15)]),
                                       {"Content-Type": "application/xml"}))
    server.route("/broken.xml", Response(500, b"oops"))
    url = f"sqlite:///{tmp_path / 'm.db'}"
    srcs = (f"[{{name: good, type: rss, url: '{server.url('/good.xml')}'}}, "
            f"{{name: broken, type: rss, url: '{server.url('/broken.xml')}'}}]")
    config = make_config(url, "http: {per_host_interval: 0, retries: 0, timeout: 3s}\n", sources_yaml=srcs)
    engine = make_engine(url)
    upgrade(engine)
    app = create_app(config, engine)

    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await c.post("/api/sources/good/test", headers=bearer("viewer"))).status_code == 403
        good = (await c.post("/api/sources/good/test", headers=bearer("handler"))).json()
        assert good["ok"] and good["error"] is None and len(good["posts"]) == 10
        assert set(good["posts"][0]) >= {"title", "text", "author", "url", "published_at"}
        broken = (await c.post("/api/sources/broken/test", headers=bearer("handler"))).json()
        assert not broken["ok"] and "500" in broken["error"] and broken["posts"] == []
        items = (await c.get("/api/sources", headers=bearer("viewer"))).json()["items"]
        assert [(s["name"], s["status"], s["posts_total"]) for s in items] == [("good", "new", 0),
                                                                               ("broken", "new", 0)]

    run(app, scenario)
    with engine.connect() as conn:
        assert conn.execute(select(posts.c.id)).first() is None, "a test stores nothing"
    engine.dispose()


def test_openapi_lists_the_routes(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await c.get("/api/openapi.json")).status_code == 401
        schema = (await c.get("/api/openapi.json", headers=bearer("viewer"))).json()
        assert schema["info"]["title"] == "monitor console API" and schema["info"]["version"]
        paths = schema["paths"]
        for path in ("/api/login", "/api/logout", "/api/me", "/api/dashboard", "/api/incidents",
                     "/api/incidents/{incident_id}", "/api/incidents/{incident_id}/ack",
                     "/api/incidents/{incident_id}/resolve", "/api/incidents/{incident_id}/feedback",
                     "/api/incidents/{incident_id}/silence", "/api/incidents/{incident_id}/ticket", "/api/tickets",
                     "/api/tickets/{ref}", "/api/tickets/{ref}/move", "/api/tickets/{ref}/assign",
                     "/api/tickets/{ref}/note", "/api/tickets/{ref}/respond", "/api/sources",
                     "/api/sources/{name}/test", "/api/reports/{kind}", "/api/silences",
                     "/api/silences/{silence_id}", "/healthz", "/readyz", "/metrics"):
            assert path in paths, path
            assert all(op.get("summary") for op in paths[path].values()), path
        assert "IncidentSummary" in schema["components"]["schemas"]
        docs = await c.get("/api/docs", headers=bearer("viewer"))
        assert docs.status_code == 200 and "/api/openapi.json" in docs.text

    run(app, scenario)


def test_shell_pages_and_security_headers(seeded: tuple[Any, Config]) -> None:
    app, _config = seeded

    async def scenario(c: httpx.AsyncClient) -> None:
        for path in ("/", "/login", "/incidents/3", "/tickets", "/tickets/T20261104-0001", "/sources", "/reports"):
            r = await c.get(path)
            assert r.status_code == 200 and r.headers["content-type"].startswith("text/html"), path
            assert "default-src 'self'" in r.headers["content-security-policy"]
            assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
            assert r.headers["x-frame-options"] == "DENY" and r.headers["referrer-policy"] == "same-origin"
        api = await c.get("/api/me", headers=bearer("viewer"))
        assert api.headers["cache-control"] == "no-store"
        assert api.json() == {"name": "viewer-bot", "role": "viewer", "csrf": None, "language": "zh"}
        assert (await c.get("/static/does-not-exist.js")).status_code == 404

    run(app, scenario)
