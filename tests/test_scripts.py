"""The reply-script library on SQLite and PostgreSQL: seeding the default library, versions, placeholders, ranking
by similarity and by past choices, and recording a reply as the ticket's first response."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func, select

from alerts.queue import TicketQueue
from alerts.scripts import (
    DEFAULT_LIBRARY,
    STAGES,
    ScriptError,
    ScriptLibrary,
    bigrams,
    fill,
    load_defaults,
    similarity,
)
from monitor.analysis.category import CATEGORIES
from monitor.config import Config
from monitor.db.schema import reply_scripts, script_uses, ticket_events
from tests.test_queue_store import T0, add_posts, make_config, new_engine


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database on each backend."""
    eng = new_engine(db_url)
    yield eng
    eng.dispose()


def cfg() -> Config:
    """Watch acme, tickets for complaint-portal items of heimao."""
    return make_config(portal={"sources": ["heimao"]})


def portal_ticket(engine: Engine, queue: TicketQueue, *, native: int = 1, text: str = "热水器漏水，要求退款",
                  category: str = "product_quality", author: str = "赵六") -> int:
    """A complaint-portal ticket with the given text and category."""
    add_posts(engine, "heimao", [{"id": native, "title": "", "text": text, "author": author,
                                  "category": category, "extra": {"demand": "退款"}}])
    from monitor.db.schema import posts, sources

    with engine.begin() as conn:
        row = conn.execute(select(posts, sources.c.name.label("source_name"))
                           .join(sources, posts.c.source_id == sources.c.id)
                           .where(posts.c.native_id == str(native))).one()
        got = queue.open_for_post(conn, row, T0)
    assert got is not None
    return got


def test_default_library_is_complete_and_seeded_once(engine: Engine) -> None:
    """Four stages for each of the four categories and a general set; seeded into an empty table, only once."""
    defaults = load_defaults()
    assert DEFAULT_LIBRARY.is_file()
    combos = {(e["category"], e["stage"]) for e in defaults}
    assert combos >= {(c, s) for c in CATEGORIES for s in STAGES}
    assert {(None, s) for s in STAGES} <= combos
    assert all("\n" not in e["body"] and "{ticket}" in e["body"] for e in defaults)
    lib = ScriptLibrary(engine, cfg())
    assert lib.ensure_seeded(T0) == len(defaults)
    assert lib.ensure_seeded(T0) == 0
    assert len(lib.scripts()) == len(defaults)
    with engine.connect() as conn:
        assert conn.execute(select(func.count()).select_from(reply_scripts)).scalar_one() == len(defaults)


def test_versions_and_deactivation(engine: Engine) -> None:
    """Editing makes a new version, offered from then on; the old one stays; deactivating retires every version."""
    lib = ScriptLibrary(engine, cfg())
    v2 = lib.save(key="pq-apology", category="product_quality", stage="apology", title="产品质量 · 致歉（新）",
                  body="{name}您好，非常抱歉，工单 {ticket}。", actor="admin", now=T0)
    assert (v2.key, v2.version, v2.active) == ("pq-apology", 2, True)
    current = {s.key: s for s in lib.scripts()}
    assert current["pq-apology"].version == 2 and current["pq-apology"].body.startswith("{name}您好，非常抱歉")
    versions = [s.version for s in lib.scripts(all_versions=True) if s.key == "pq-apology"]
    assert versions == [2, 1]
    assert lib.get("pq-apology", 1) is not None and lib.get("pq-apology", 1).version == 1  # type: ignore[union-attr]
    lib.deactivate("pq-apology")
    assert "pq-apology" not in {s.key for s in lib.scripts()}
    assert "pq-apology" in {s.key for s in lib.scripts(include_inactive=True)}
    v3 = lib.save(key="pq-apology", category="product_quality", stage="apology", title="回来了",
                  body="抱歉 {ticket}", actor="admin", now=T0)
    assert v3.version == 3 and lib.get("pq-apology") == v3
    fresh = lib.save(key=None, category=None, stage="solution", title="新话术", body="方案 {ticket}", actor="a",
                     now=T0)
    assert fresh.version == 1 and fresh.category is None and fresh.key.startswith("any-solution-")
    with pytest.raises(ScriptError, match="placeholder"):
        lib.save(key="x1", category=None, stage="apology", title="t", body="{nmae}您好", actor="a")
    with pytest.raises(ScriptError, match="stage"):
        lib.save(key="x1", category=None, stage="later", title="t", body="b", actor="a")
    with pytest.raises(ScriptError, match="category"):
        lib.save(key="x1", category="nope", stage="apology", title="t", body="b", actor="a")
    with pytest.raises(ScriptError, match="key"):
        lib.save(key="Bad Key!", category=None, stage="apology", title="t", body="b", actor="a")
    with pytest.raises(ScriptError):
        lib.deactivate("no-such-key")


def test_placeholders_are_filled_from_the_ticket(engine: Engine) -> None:
    """{name} {ticket} {deadline} {brand} {handler}: the complainant, number, next deadline (display time), the
    watched brand, the assignee."""
    config = cfg()
    queue = TicketQueue(engine, config)
    tid = portal_ticket(engine, queue)
    queue.assign(tid, "小王", actor="小王", now=T0 + timedelta(minutes=5))
    ticket = queue.get(tid, now=T0 + timedelta(minutes=6))
    assert ticket is not None
    values = ScriptLibrary(engine, config).values(ticket)
    # Registered at 09:00 Shanghai: acknowledged; the next unmet deadline is respond, 24 h later.
    assert values == {"name": "赵六", "ticket": "T20261123-0001", "deadline": "11月24日 09:00", "brand": "acme",
                      "handler": "小王"}
    assert fill("{name}您好 {ticket} {deadline} {brand} {handler} {other}", values) == (
        "赵六您好 T20261123-0001 11月24日 09:00 acme 小王 {other}")
    # A value with braces is not expanded again.
    assert fill("{name}", {"name": "{ticket}"}) == "{ticket}"


def test_suggestions_rank_by_similarity_then_by_past_choices(engine: Engine) -> None:
    """Candidates fit the category and the stage of the state; the closer text wins until handlers keep
    choosing the other script for this category."""
    config = cfg()
    queue = TicketQueue(engine, config)
    lib = ScriptLibrary(engine, config)
    lib.ensure_seeded(T0)
    lib.save(key="pq-ack-leak", category="product_quality", stage="acknowledge", title="漏水受理",
             body="{name}您好，热水器漏水的问题已受理，要求退款的诉求我们会核实。工单 {ticket}。", actor="a", now=T0)
    tid = portal_ticket(engine, queue, text="热水器漏水，要求退款")
    ticket = queue.get(tid)
    assert ticket is not None and ticket.state == "accepted"
    got = lib.suggest(ticket)
    assert {g.script.stage for g in got} <= {"acknowledge", "apology"}
    assert {g.script.category for g in got} <= {"product_quality", None}
    assert got[0].script.key == "pq-ack-leak", [(g.script.key, g.score) for g in got]
    assert got[0].text.startswith("赵六您好，热水器漏水") and "{" not in got[0].text
    assert got[0].similarity > got[1].similarity
    # Handlers chose pq-apology three times for product-quality tickets: it rises to the top.
    for n in range(3):
        other = portal_ticket(engine, queue, native=10 + n, text=f"别的问题 {n}")
        lib.record_use(other, "pq-apology", None, "抱歉", actor="amy", now=T0 + timedelta(minutes=n))
    # ... but choices for another category do not count here.
    svc = portal_ticket(engine, queue, native=20, text="客服态度差", category="service_experience")
    for _ in range(5):
        lib.record_use(svc, "any-acknowledge", None, "已收到", actor="amy", now=T0)
    got = lib.suggest(ticket)
    assert got[0].script.key == "pq-apology" and got[0].uses == 3
    assert next(g for g in got if g.script.key == "any-acknowledge").uses == 0
    # A ticket in 处理 gets solution scripts; a category-less one only general scripts.
    queue.move(tid, "verifying", actor="amy")
    queue.move(tid, "handling", actor="amy")
    handling = queue.get(tid)
    assert handling is not None
    assert {g.script.stage for g in lib.suggest(handling)} == {"solution"}
    plain = portal_ticket(engine, queue, native=30, text="其他问题", category="other")
    got_plain = queue.get(plain)
    assert got_plain is not None
    assert {g.script.category for g in lib.suggest(got_plain)} == {None}


def test_record_use_counts_as_first_response(engine: Engine) -> None:
    """The reply is a use row and a 回复 event "已回复：…"; the first one meets the respond milestone, later ones do
    not move it; an unknown script is refused and nothing is written."""
    config = cfg()
    queue = TicketQueue(engine, config)
    lib = ScriptLibrary(engine, config)
    tid = portal_ticket(engine, queue)
    with pytest.raises(ScriptError):
        lib.record_use(tid, "no-such", None, "x", actor="amy", now=T0)
    with pytest.raises(ScriptError):
        lib.record_use(tid, None, None, "  ", actor="amy", now=T0)
    first = lib.record_use(tid, "pq-acknowledge", 1, "赵六您好，已受理", actor="amy", now=T0 + timedelta(hours=1))
    assert first.responded_at == T0 + timedelta(hours=1) and first.acknowledged_at == T0 + timedelta(hours=1)
    later = lib.record_use(tid, None, None, "自己写的回复", actor="bob", now=T0 + timedelta(hours=2))
    assert later.responded_at == T0 + timedelta(hours=1)
    with engine.connect() as conn:
        uses = conn.execute(select(script_uses).order_by(script_uses.c.id)).all()
        notes = conn.execute(select(ticket_events.c.note).where(ticket_events.c.ticket_id == tid,
                                                                ticket_events.c.action == "respond")
                             .order_by(ticket_events.c.id)).scalars().all()
    assert [(u.script_key, u.script_version, u.category, u.stage, u.text, u.actor) for u in uses] == [
        ("pq-acknowledge", 1, "product_quality", "acknowledge", "赵六您好，已受理", "amy"),
        (None, None, "product_quality", None, "自己写的回复", "bob")]
    assert notes == ["已回复：赵六您好，已受理", "已回复：自己写的回复"]


def test_bigram_similarity() -> None:
    """Bigrams inside runs of letters and CJK characters; placeholders and punctuation split runs."""
    assert bigrams("漏水，退款") == {"漏水", "退款"}
    assert bigrams("{ticket} 漏水") == {"漏水"}
    assert similarity(bigrams("热水器漏水"), bigrams("热水器漏水")) == 1.0
    assert similarity(bigrams("热水器漏水"), bigrams("客服态度")) == 0.0
    assert similarity(set(), {"ab"}) == 0.0
