"""Complainant and author profiles on SQLite and PostgreSQL: linking accounts (same handle, same phone number, near-
identical texts) with evidence, the flags' thresholds, reach grading of portal tickets, and the API's masking and
audit rows."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import Engine, select, update

from alerts.profiles import (
    build_profile,
    followers_text,
    graded_severity,
    reach_bump,
    ticket_person,
)
from alerts.queue import TicketQueue
from monitor.audit import list_entries
from monitor.clock import ManualClock
from monitor.db.schema import posts, ticket_events
from monitor.normalize import followers_of
from monitor.web.app import create_app
from tests.test_progress import config_for
from tests.test_queue_store import T0, add_incident, add_posts, make_config, new_engine
from tests.test_scripts import portal_ticket
from tests.test_web_api import bearer, run

NOW = T0 + timedelta(hours=1)
PHONE = "13812345678"


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated, empty database on each backend."""
    eng = new_engine(db_url)
    yield eng
    eng.dispose()


def _accounts(profile: object) -> dict[tuple[str, str], list[dict[str, object]]]:
    data = profile.to_json()  # type: ignore[attr-defined]
    return {(a["source"], a["handle"]): a["links"] for a in data["accounts"]}


# -- reach ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("followers", "bump", "from_blue", "from_orange"), [
    (None, 0, "blue", "orange"), (0, 0, "blue", "orange"), (99_999, 0, "blue", "orange"),
    (100_000, 1, "yellow", "red"), (499_999, 1, "yellow", "red"), (500_000, 2, "orange", "red"),
    (3_000_000, 2, "orange", "red"),
])
def test_reach_bump_and_graded_severity(followers: int | None, bump: int, from_blue: str, from_orange: str) -> None:
    """>= 100k followers raise a complaint one level, >= 500k two; never above red."""
    assert reach_bump(followers) == bump
    assert graded_severity("blue", followers) == from_blue
    assert graded_severity("orange", followers) == from_orange
    assert graded_severity("red", followers) == "red"


def test_followers_read_defensively() -> None:
    """followers, followers_count or user.followers_count; strings of digits count; anything else is None."""
    assert followers_of({"followers": 52}) == 52
    assert followers_of({"user": {"followers_count": "520000"}}) == 520_000
    assert followers_of({"followers_count": 7.0}) == 7
    assert followers_of({"user": "x", "followers": True}) is None
    assert followers_of(None) is None and followers_of({"followers": "many"}) is None
    assert followers_text(520_000) == "52 万" and followers_text(35_000) == "3.5 万" and followers_text(800) == "800"


# -- linking -------------------------------------------------------------------------------------------------------

def test_same_handle_across_sources(engine: Engine) -> None:
    """The same handle on another source is linked as 同名账号, with its posts as evidence."""
    add_posts(engine, "weibo", [{"id": 1, "text": "澄星热水器漏水", "author": "小李飞刀"}])
    add_posts(engine, "tieba", [{"id": 2, "text": "澄星售后不理人", "author": "小李飞刀"},
                                {"id": 3, "text": "今天天气不错", "author": "路人"}])
    profile = build_profile(engine, None, source="weibo", author="小李飞刀", now=NOW)
    accounts = _accounts(profile)
    assert set(accounts) == {("weibo", "小李飞刀"), ("tieba", "小李飞刀")}
    assert accounts[("weibo", "小李飞刀")] == []
    (link,) = accounts[("tieba", "小李飞刀")]
    assert link["kind"] == "same_handle" and link["label"] == "同名账号" and link["posts"] == ["tieba:2"]
    assert profile.posts == 2 and profile.negative_posts == 2


def test_same_phone_number_in_two_accounts(engine: Engine) -> None:
    """The same mobile number (written differently) links two differently-named accounts; evidence is masked."""
    add_posts(engine, "heimao", [{"id": 1, "text": f"澄星热水器漏水，联系电话 {PHONE}", "author": "张先生"}])
    add_posts(engine, "weibo", [{"id": 2, "text": "@澄星 客服不回复，我电话138-1234-5678", "author": "zhang_88"},
                                {"id": 3, "text": "电话 13900001111 找我", "author": "别人"}])
    profile = build_profile(engine, None, source="heimao", author="张先生", now=NOW)
    accounts = _accounts(profile)
    assert set(accounts) == {("heimao", "张先生"), ("weibo", "zhang_88")}
    (link,) = accounts[("weibo", "zhang_88")]
    assert link["kind"] == "same_contact" and link["posts"] == ["heimao:1", "weibo:2"]
    assert "138****5678" in link["evidence"] and PHONE not in link["evidence"]
    assert "12345678" not in str(profile.to_json())


def test_near_identical_texts(engine: Engine) -> None:
    """Texts with character-bigram Jaccard >= 0.8 link their authors; an unrelated complaint does not."""
    text = "澄星热水器用了三个月就漏水，售后一直推脱不给退款，太坑了"
    add_posts(engine, "weibo", [{"id": 1, "text": text, "author": "甲"}])
    add_posts(engine, "tieba", [{"id": 2, "text": text + "！！", "author": "乙"},
                                {"id": 3, "text": "澄星洗衣机噪音大，客服态度很差，要求换货", "author": "丙"}])
    profile = build_profile(engine, None, source="weibo", author="甲", now=NOW)
    accounts = _accounts(profile)
    assert set(accounts) == {("weibo", "甲"), ("tieba", "乙")}
    (link,) = accounts[("tieba", "乙")]
    assert link["kind"] == "similar_text" and link["posts"] == ["weibo:1", "tieba:2"]
    assert "weibo:1 ≈ tieba:2" in link["evidence"]


def test_old_posts_are_outside_the_window(engine: Engine) -> None:
    """Only the last 90 days count."""
    add_posts(engine, "weibo", [{"id": 1, "text": "澄星漏水", "author": "老王"}])
    add_posts(engine, "tieba", [{"id": 2, "text": "澄星漏水", "author": "老王"}], at=T0 - timedelta(days=120))
    profile = build_profile(engine, None, source="weibo", author="老王", now=NOW)
    assert set(_accounts(profile)) == {("weibo", "老王")} and profile.posts == 1


# -- flags ---------------------------------------------------------------------------------------------------------

def test_no_flags_for_a_quiet_author(engine: Engine) -> None:
    """Two negative posts, no tickets, no reach, one incident: no flag."""
    uids = add_posts(engine, "weibo", [{"id": 1, "text": "澄星漏水", "author": "a"},
                                       {"id": 2, "text": "澄星售后差", "author": "a"}])
    add_incident(engine, 1, uids[:1], authors=["a"])
    profile = build_profile(engine, None, source="weibo", author="a", now=NOW)
    assert profile.flags == [] and profile.negative_recent == 2 and profile.incidents == [1]


def test_flag_thresholds(engine: Engine) -> None:
    """3 negative posts in 30 days -> repeat; 100k followers -> large reach; 2 incidents -> multi incident."""
    uids = add_posts(engine, "weibo", [
        {"id": 1, "text": "澄星漏水", "author": "b", "extra": {"user": {"followers_count": 100_000}}},
        {"id": 2, "text": "澄星售后差", "author": "b"}, {"id": 3, "text": "澄星不退款", "author": "b"}])
    add_incident(engine, 1, uids[:1], authors=["b"])
    add_incident(engine, 2, uids[1:2], authors=["b"])
    profile = build_profile(engine, None, source="weibo", author="b", now=NOW)
    assert profile.flags == ["repeat_complainant", "large_reach", "multi_incident"]
    assert profile.max_followers == 100_000
    labels = [f["label"] for f in profile.to_json()["flags"]]
    assert labels == ["重复投诉", "大V", "多次事件"]
    # Engagement alone (reposts + comments >= 1000) is large reach too.
    add_posts(engine, "tieba", [{"id": 9, "text": "澄星爆炸", "author": "c"}])
    with engine.begin() as conn:
        conn.execute(update(posts).where(posts.c.native_id == "9").values(reposts=600, comments=400))
    assert build_profile(engine, None, source="tieba", author="c", now=NOW).flags == ["large_reach"]


def test_repeat_complainant_by_tickets(engine: Engine) -> None:
    """Two portal tickets from the same author (encrypted or not) make a repeat complainant."""
    config = make_config(portal={"sources": ["heimao"]})
    queue = TicketQueue(engine, config)
    t1 = portal_ticket(engine, queue, native=1, author="赵六")
    t2 = portal_ticket(engine, queue, native=2, author="赵六", text="热水器又漏水了")
    profile = build_profile(engine, config, source="heimao", author="赵六", now=NOW)
    assert profile.tickets == [t1, t2] and profile.tickets_recent == 2
    assert "repeat_complainant" in profile.flags
    assert ticket_person(engine, queue.get(t1)) == ("heimao", "赵六")


# -- grading portal tickets ----------------------------------------------------------------------------------------

def test_big_account_complaint_opens_at_orange(engine: Engine) -> None:
    """A portal complaint from a 520k-follower author opens at orange with a note saying why; a small one at blue."""
    queue = TicketQueue(engine, make_config(portal={"sources": ["heimao"]}))
    add_posts(engine, "heimao", [
        {"id": 1, "text": "澄星热水器漏水，要求退款", "author": "大V", "extra": {"user": {"followers_count": 520_000}}},
        {"id": 2, "text": "澄星热水器漏水，要求退款", "author": "小号", "extra": {"followers": 300}}])
    with engine.begin() as conn:
        rows = {r.native_id: r for r in conn.execute(select(posts).where(posts.c.native_id.in_(["1", "2"])))}
        big = queue.open_for_post(conn, rows["1"], T0)
        small = queue.open_for_post(conn, rows["2"], T0)
    assert big is not None and small is not None
    got_big, got_small = queue.get(big), queue.get(small)
    assert got_big is not None and got_small is not None
    assert got_big.severity == "orange" and got_small.severity == "blue"
    with engine.connect() as conn:
        notes = list(conn.execute(select(ticket_events.c.note).where(ticket_events.c.ticket_id == big)).scalars())
        small_notes = list(conn.execute(select(ticket_events.c.note)
                                        .where(ticket_events.c.ticket_id == small)).scalars())
    assert any(n.startswith("大V投诉：粉丝 52 万，等级上调") for n in notes)
    assert not any("大V" in n for n in small_notes)


# -- API -----------------------------------------------------------------------------------------------------------

def test_api_masks_for_viewers_and_audits_handlers(db_url: str) -> None:
    """Viewers see handles as first char + ***; handlers see them and leave a "view" row; the ticket's profile."""
    engine = new_engine(db_url)
    config = config_for(db_url)
    tid = portal_ticket(engine, TicketQueue(engine, config), text=f"热水器漏水 电话{PHONE}", author="赵六")
    add_posts(engine, "weibo", [{"id": 5, "text": f"澄星热水器漏水 我的手机 {PHONE}", "author": "zhao6"}])
    app = create_app(config, engine, clock=ManualClock(NOW))

    async def scenario(c: httpx.AsyncClient) -> None:
        params = {"source": "heimao", "author": "赵六"}
        viewer = (await c.get("/api/profiles", params=params, headers=bearer("viewer"))).json()
        assert viewer["handle"] == "赵***"
        assert {a["handle"] for a in viewer["accounts"]} == {"赵***", "z***"}
        assert "zhao6" not in str(viewer) and "赵六" not in str(viewer) and PHONE not in str(viewer)
        assert list_entries(engine, action="view", subject="person:heimao:赵六") == []
        handler = await c.get("/api/profiles", params=params, headers=bearer("handler"))
        assert handler.status_code == 200, handler.text
        data = handler.json()
        assert {a["handle"] for a in data["accounts"]} == {"赵六", "zhao6"}
        assert PHONE not in str(data) and "138****5678" in str(data)
        (row,) = list_entries(engine, action="view", subject="person:heimao:赵六")
        assert row["actor"] == "token:handler-bot" and row["role"] == "handler"
        by_ticket = (await c.get(f"/api/tickets/{tid}/profile", headers=bearer("admin"))).json()
        assert by_ticket["ticket"] == tid and by_ticket["handle"] == "赵六"
        assert by_ticket["counts"]["tickets"] == 1
        assert (await c.get("/api/tickets/999/profile", headers=bearer("viewer"))).status_code == 404
        assert (await c.get("/api/profiles", params={"source": "heimao"},
                            headers=bearer("viewer"))).status_code == 422
        assert (await c.get("/api/profiles", params=params)).status_code == 401

    try:
        run(app, scenario)
    finally:
        engine.dispose()
