"""The complainant's progress page on SQLite and PostgreSQL: tokens, the public view (which must hold nothing
personal or internal, however distinctive the ticket's contents), 404s, the rate limit, and the switch."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select, update

from alerts.outcomes import Outcomes
from alerts.progress import ensure_token, public_view
from alerts.queue import TicketQueue
from alerts.scripts import ScriptLibrary
from monitor.clock import ManualClock
from monitor.config import Config
from monitor.db.schema import tickets
from monitor.web import api_progress
from monitor.web.app import create_app
from tests.test_queue_store import T0, new_engine
from tests.test_scripts import portal_ticket
from tests.test_web_api import bearer, make_config, run

#: Strings planted in every personal or internal field: none may come out of the public view.
SECRETS = {"complainant": "投诉人甄秘密", "content": "内容机密XYZ-7781", "demand": "诉求机密QQ-5512",
           "title": "标题机密TT-9090", "platform": "平台机密PP-3131", "assignee": "处理人钱机密"}
NOTE = "内部备注机密NN-4242"


def config_for(db_url: str, public: bool = True) -> Config:
    """Users and tokens of each role; tickets for heimao items; the progress page on or off."""
    flag = "true" if public else "false"
    return make_config(db_url, f"queue: {{portal: {{sources: [heimao]}}, public_progress: {flag}}}\n"
                               "alerts: {console_url: 'https://console.example/'}\n")


@pytest.fixture
def setup(db_url: str) -> Iterator[tuple[Engine, Config, int]]:
    """A ticket whose every personal / internal field holds a distinctive string, with notes, a reply, a
    compensation and an outcome note that do too; acknowledged and responded, now in 核实."""
    engine = new_engine(db_url)
    config = config_for(db_url)
    queue = TicketQueue(engine, config)
    tid = portal_ticket(engine, queue, text=SECRETS["content"], author=SECRETS["complainant"])
    with engine.begin() as conn:
        conn.execute(update(tickets).where(tickets.c.id == tid).values(
            title=SECRETS["title"], demand=SECRETS["demand"], platform=SECRETS["platform"],
            evidence=["https://heimao.example/secret-evidence"], tags=["标签机密"]))
    queue.assign(tid, SECRETS["assignee"], actor="amy", now=T0 + timedelta(minutes=30))
    queue.note(tid, NOTE, actor="amy", now=T0 + timedelta(minutes=31))
    ScriptLibrary(engine, config).record_use(tid, None, None, f"回复 {NOTE}", actor="amy",
                                             now=T0 + timedelta(hours=30))  # late: 24 h limit
    Outcomes(engine, config).compensation(tid, "refund", amount=88, note=NOTE, actor="amy", now=T0)
    Outcomes(engine, config).outcome(tid, note=NOTE, actor="amy", now=T0)
    queue.move(tid, "verifying", actor="amy", now=T0 + timedelta(hours=31))
    yield engine, config, tid
    engine.dispose()


def test_tokens_are_unguessable_unique_and_stable(setup: tuple[Engine, Config, int]) -> None:
    """192 random bits, URL-safe; made once per ticket; different tickets never share one."""
    engine, config, tid = setup
    other = portal_ticket(engine, TicketQueue(engine, config), native=2)
    with engine.begin() as conn:
        token = ensure_token(conn, tid)
        again = ensure_token(conn, tid)
        second = ensure_token(conn, other)
        assert ensure_token(conn, 999) is None
    assert token is not None and second is not None
    assert token == again and token != second
    assert re.fullmatch(r"[A-Za-z0-9_-]{32}", token)
    with engine.connect() as conn:
        assert conn.execute(select(tickets.c.public_token).where(tickets.c.id == tid)).scalar() == token


def test_public_view_holds_only_progress(setup: tuple[Engine, Config, int]) -> None:
    """Number, stage (zh + en), stage bar, registration date, promises and whether kept: nothing else."""
    engine, config, tid = setup
    with engine.begin() as conn:
        token = ensure_token(conn, tid)
    assert token
    view = public_view(engine, config, token, T0 + timedelta(hours=32))
    assert view is not None
    assert set(view) == {"number", "state", "stage_zh", "stage_en", "stages", "registered", "promises", "closed"}
    assert (view["number"], view["state"], view["stage_zh"], view["stage_en"]) == (
        "T20261123-0001", "verifying", "核实", "verifying")
    assert [(s["state"], s["status"]) for s in view["stages"]] == [
        ("accepted", "done"), ("verifying", "current"), ("handling", "todo"), ("follow_up", "todo"),
        ("closed", "todo")]
    assert view["registered"] == "2026-11-23"
    promises = {p["milestone"]: p for p in view["promises"]}
    assert promises["acknowledge"]["met"] and promises["acknowledge"]["on_time"]
    assert promises["respond"]["met"] and promises["respond"]["on_time"] is False
    assert not promises["verify"]["met"] and promises["verify"]["on_time"] is None
    assert promises["acknowledge"]["deadline"] == "2026-11-23T11:00+08:00"
    text = repr(view)
    for leak in [*SECRETS.values(), NOTE, "secret-evidence", "标签机密", "amy", "88"]:
        assert leak not in text, leak
    assert public_view(engine, config, "x" * 32, T0) is None
    assert public_view(engine, config, "bad token!", T0) is None


def test_public_api_and_page(setup: tuple[Engine, Config, int]) -> None:
    """Handlers get the link; anyone with it gets the page and the data without logging in; a viewer cannot
    make links; unknown tokens are 404; too many requests from one address are 429."""
    engine, config, tid = setup
    clock = ManualClock(T0 + timedelta(hours=32))
    app = create_app(config, engine, clock=clock)

    async def scenario(c: httpx.AsyncClient) -> None:
        assert (await c.get(f"/api/tickets/{tid}/progress-link", headers=bearer("viewer"))).status_code == 403
        assert (await c.get("/api/tickets/999/progress-link", headers=bearer("handler"))).status_code == 404
        link = (await c.get(f"/api/tickets/{tid}/progress-link", headers=bearer("handler"))).json()["url"]
        assert link.startswith("https://console.example/p/")
        again = (await c.get(f"/api/tickets/{tid}/progress-link", headers=bearer("admin"))).json()["url"]
        assert again == link
        path = link.removeprefix("https://console.example")
        token = path.rsplit("/", 1)[1]
        page = await c.get(path)  # no credentials at all
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "/static/progress.js" in page.text and "<script>" not in page.text
        assert "script-src 'self'" in page.headers["content-security-policy"]
        assert page.headers["cache-control"] == "no-store"
        for leak in [*SECRETS.values(), NOTE]:
            assert leak not in page.text
        data = await c.get(f"/api/public/progress/{token}")
        assert data.status_code == 200 and data.json()["stage_zh"] == "核实"
        body = data.text
        for leak in [*SECRETS.values(), NOTE, "secret-evidence", "amy"]:
            assert leak not in body, leak
        missing = await c.get(f"/api/public/progress/{'A' * 32}")
        assert missing.status_code == 404 and missing.json()["code"] == "not_found"
        assert (await c.get("/api/public/progress/short")).status_code == 404
        # The ticket JSON for the team is unaffected, and carries the new fields.
        got = (await c.get(f"/api/tickets/{tid}", headers=bearer("viewer"))).json()
        assert got["assignee"] == SECRETS["assignee"] and got["incomplete"] is False
        # Rate limit: every request from one address counts, found or not.
        codes = [(await c.get(f"/api/public/progress/{token}")).status_code
                 for _ in range(api_progress.PUBLIC_REQUESTS)]
        assert codes[-1] == 429 and 200 in codes
        limited = await c.get(f"/api/public/progress/{token}")
        assert limited.status_code == 429 and int(limited.headers["retry-after"]) >= 1
        clock.advance(api_progress.PUBLIC_WINDOW + 1)
        assert (await c.get(f"/api/public/progress/{token}")).status_code == 200

    run(app, scenario)


def test_switched_off(setup: tuple[Engine, Config, int]) -> None:
    """With queue.public_progress false: no links for handlers, and page and data are 404 even for a token that
    exists."""
    engine, _config, tid = setup
    with engine.begin() as conn:
        token = ensure_token(conn, tid)
    off = config_for(str(engine.url.render_as_string(hide_password=False)), public=False)
    app = create_app(off, engine, clock=ManualClock(T0))

    async def scenario(c: httpx.AsyncClient) -> None:
        refused = await c.get(f"/api/tickets/{tid}/progress-link", headers=bearer("handler"))
        assert refused.status_code == 409 and refused.json()["code"] == "disabled"
        assert (await c.get(f"/p/{token}")).status_code == 404
        assert (await c.get(f"/api/public/progress/{token}")).status_code == 404

    run(app, scenario)
