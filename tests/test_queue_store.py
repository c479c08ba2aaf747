"""The complaint queue against real databases (SQLite and PostgreSQL): registration, lifecycle, SLA rows, queries.

Also holds the seeding helpers the other queue tests import (posts, incidents, a config).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, func, select, update

from alerts.channels.base import ChannelConfig
from alerts.config import AlertsConfig, QueueConfig, RouteConfig
from alerts.queue import EXTERNAL_CHANNEL, TicketQueue
from alerts.tickets import TicketError, TransitionError
from monitor.analysis.watch import WatchConfig
from monitor.clock import ManualClock
from monitor.config import Config
from monitor.db import Store, make_engine, upgrade
from monitor.db.schema import incident_posts, incidents, notifications, posts, sources, ticket_events, tickets
from monitor.normalize import Post, content_hash

#: 2026-11-23 09:00 in Shanghai: ticket numbers of that moment are T20261123-....
T0 = datetime(2026, 11, 23, 1, 0, tzinfo=UTC)
H = 3600.0


def make_config(*, channels: Sequence[str] = ("ops", "boss"), routes: Sequence[RouteConfig] = (),
                **queue: Any) -> Config:
    """A config with watch ``acme`` (澄星), the given channels (enabled) and queue options."""
    return Config(watches=[WatchConfig(name="acme", any=["澄星"])],
                  channels=[ChannelConfig(name=c, type="webhook") for c in channels],
                  alerts=AlertsConfig(console_url="https://console.example", routes=list(routes)),
                  queue=QueueConfig(**queue))


def new_engine(url: str) -> Engine:
    """A migrated, empty database."""
    engine = make_engine(url)
    upgrade(engine)
    return engine


def add_posts(engine: Engine, source: str, items: Sequence[dict[str, Any]], at: datetime = T0) -> list[str]:
    """Store posts of ``source`` and their analysis columns; each item: id, text, and optionally title, author,
    url, extra, sentiment, watches, category, published_at. Returns their uids."""
    store = Store(engine)
    with engine.connect() as conn:
        known = set(conn.execute(select(sources.c.name)).scalars())
    if source not in known:
        with engine.begin() as conn:
            conn.execute(sources.insert().values(name=source, type="rss", status="ok", created_at=at, updated_at=at))
    batch = [Post(source=source, native_id=str(i["id"]), text=i["text"], title=i.get("title", ""),
                  fetched_at=i.get("published_at", at), published_at=i.get("published_at", at),
                  url=i.get("url", f"https://{source}.example/{i['id']}"), author=i.get("author", ""),
                  content_hash=content_hash(i.get("title", ""), i["text"]), extra=i.get("extra", {}))
             for i in items]
    store.commit_run(source, batch, {}, started_at=at, finished_at=at, pages=1)
    with engine.begin() as conn:
        sid = conn.execute(select(sources.c.id).where(sources.c.name == source)).scalar_one()
        for i in items:
            conn.execute(update(posts).where(posts.c.source_id == sid, posts.c.native_id == str(i["id"])).values(
                sentiment=i.get("sentiment", "negative"), watches=i.get("watches", ["acme"]),
                category=i.get("category"), analysed_at=at))
    return [p.uid for p in batch]


def add_incident(engine: Engine, incident_id: int, post_uids: Sequence[str], *, severity: str = "orange",
                 title: str = "澄星 · 漏水 售后", keys: Sequence[str] = ("topic:t1",),
                 keywords: Sequence[str] = ("漏水", "售后", "退款"), opened_at: datetime = T0,
                 authors: Sequence[str] | None = None) -> Any:
    """Insert an incident row with its posts; returns the row."""
    with engine.begin() as conn:
        conn.execute(incidents.insert().values(
            id=incident_id, opened_at=opened_at, updated_at=opened_at, status="open", severity=severity, score=5.0,
            title=title, keys=list(keys), keywords=list(keywords),
            sources=sorted({u.split(":")[0] for u in post_uids}), authors=len(set(authors or [])),
            posts=len(post_uids), representative=post_uids[0] if post_uids else None, watches=["acme"]))
        for n, uid in enumerate(post_uids):
            conn.execute(incident_posts.insert().values(
                incident_id=incident_id, post_uid=uid, author=(authors or [""] * len(post_uids))[n],
                source=uid.split(":")[0], added_at=opened_at + timedelta(minutes=n)))
        return conn.execute(select(incidents).where(incidents.c.id == incident_id)).one()


def complaint_posts() -> list[dict[str, Any]]:
    """Five negative posts about one leaking product, three authors, one stated demand."""
    return [
        {"id": 1, "title": "澄星热水器漏水", "text": "澄星热水器用了三天就漏水，客服一直推脱。要求退款并赔偿损失！",
         "author": "张三", "category": "product_quality"},
        {"id": 2, "text": "澄星热水器漏水，售后不上门", "author": "张三", "category": "product_quality"},
        {"id": 3, "text": "同样漏水，希望厂家给个说法", "author": "李四", "category": "product_quality"},
        {"id": 4, "text": "澄星客服态度差", "author": "王五", "category": "service_experience"},
        {"id": 5, "text": "漏水漏了一地", "author": "张三", "category": "product_quality"},
    ]


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database on each backend."""
    eng = new_engine(db_url)
    yield eng
    eng.dispose()


def _count(engine: Engine, table: Any, *where: Any) -> int:
    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(table).where(*where)).scalar_one())


def test_incident_registration_is_complete_and_idempotent(engine: Engine) -> None:
    """who / what / where / when / demand / evidence / category / tags come from the incident and its posts; a
    second call returns the same ticket; the incident points at it; numbers count up per local day."""
    uids = add_posts(engine, "weibo", complaint_posts())
    inc = add_incident(engine, 7, uids, authors=["张三", "张三", "李四", "王五", "张三"])
    queue = TicketQueue(engine, make_config())
    with engine.begin() as conn:
        first = queue.open_for_incident(conn, inc, T0)
    with engine.begin() as conn:
        again = queue.open_for_incident(conn, inc, T0 + timedelta(hours=1))
    assert first is not None and again == first
    assert _count(engine, tickets) == 1
    t = queue.get(first, now=T0)
    assert t is not None
    assert t.number == "T20261123-0001" and t.state == "accepted" and t.severity == "orange"
    assert t.complainant.startswith("张三、")
    assert "李四" in t.complainant and "王五" in t.complainant
    assert t.platform == "weibo" and t.occurred_at == T0
    assert t.content == "澄星热水器漏水 澄星热水器用了三天就漏水，客服一直推脱。要求退款并赔偿损失！"
    assert "要求退款并赔偿损失" in t.demand and "希望厂家给个说法" in t.demand
    assert "客服态度差" not in t.demand
    assert t.evidence == tuple(f"https://weibo.example/{i}" for i in range(1, 6))
    assert t.category == "product_quality"
    assert t.tags == ("漏水", "售后", "退款", "acme")
    assert t.incident_id == 7
    with engine.connect() as conn:
        assert conn.execute(select(incidents.c.ticket_id).where(incidents.c.id == 7)).scalar() == first
    assert [(e.action, e.to_state) for e in t.events] == [("create", "accepted")]
    # A second incident the same local day gets the next number; one the next day starts again at 0001.
    inc2 = add_incident(engine, 8, uids[:1], keys=("topic:t2",))
    inc3 = add_incident(engine, 9, uids[:1], keys=("topic:t3",))
    with engine.begin() as conn:
        second = queue.open_for_incident(conn, inc2, T0 + timedelta(hours=14))  # 23:00 local, same day
        third = queue.open_for_incident(conn, inc3, T0 + timedelta(hours=15))  # 00:00 local, next day
    numbers = [queue.get(i, now=T0).number for i in (second, third)]  # type: ignore[union-attr,arg-type]
    assert numbers == ["T20261123-0002", "T20261124-0001"]


def test_demand_field_of_the_source_wins_over_phrases(engine: Engine) -> None:
    """A portal's stated demand (extra.demand) is the ticket's demand; phrases are only the fallback."""
    uids = add_posts(engine, "heimao", [{"id": 1, "text": "要求退款", "extra": {"demand": "退一赔三"}},
                                        {"id": 2, "text": "漏水", "extra": {"demand": "退一赔三"}}])
    inc = add_incident(engine, 1, uids)
    queue = TicketQueue(engine, make_config())
    with engine.begin() as conn:
        tid = queue.open_for_incident(conn, inc, T0)
    assert queue.get(tid, now=T0).demand == "退一赔三"  # type: ignore[arg-type,union-attr]


def test_min_severity_and_escalation(engine: Engine) -> None:
    """Below queue.min_severity no ticket; the same incident escalated opens one; a further escalation raises the
    ticket's severity with an event; the queue disabled opens nothing."""
    uids = add_posts(engine, "weibo", complaint_posts()[:2])
    inc = add_incident(engine, 1, uids, severity="blue")
    queue = TicketQueue(engine, make_config(min_severity="yellow"))
    with engine.begin() as conn:
        assert queue.open_for_incident(conn, inc, T0) is None
    assert _count(engine, tickets) == 0
    with engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == 1).values(severity="yellow"))
        row = conn.execute(select(incidents).where(incidents.c.id == 1)).one()
        tid = queue.open_for_incident(conn, row, T0)
    with engine.begin() as conn:
        conn.execute(update(incidents).where(incidents.c.id == 1).values(severity="red"))
        row = conn.execute(select(incidents).where(incidents.c.id == 1)).one()
        assert queue.open_for_incident(conn, row, T0 + timedelta(hours=1)) == tid
    t = queue.get(tid, now=T0)  # type: ignore[arg-type]
    assert t is not None and t.severity == "red"
    assert [e.action for e in t.events] == ["create", "severity"]
    off = TicketQueue(engine, make_config(enabled=False))
    inc2 = add_incident(engine, 2, uids, severity="red", keys=("topic:x",))
    with engine.begin() as conn:
        assert off.open_for_incident(conn, inc2, T0) is None


def test_lifecycle_writes_events_and_milestones(engine: Engine) -> None:
    """A ticket walked through the whole lifecycle: each action one event row with who/when/from/to, milestone
    times set by the right actions, a refused move changes nothing."""
    uids = add_posts(engine, "weibo", complaint_posts()[:1])
    queue = TicketQueue(engine, make_config(), ManualClock(T0))
    inc = add_incident(engine, 1, uids)
    with engine.begin() as conn:
        tid = queue.open_for_incident(conn, inc, T0)
    assert tid is not None
    at = lambda h: T0 + timedelta(hours=h)  # noqa: E731
    queue.note(tid, "先记一笔", actor="amy", now=at(0.5))
    assert queue.get(tid, now=at(1)).acknowledged_at is None  # type: ignore[union-attr]
    queue.assign(tid, "bob", actor="amy", now=at(1))
    with pytest.raises(TransitionError):
        queue.move(tid, "follow_up", actor="bob", now=at(2))
    queue.move(tid, "核实", actor="bob", now=at(3))
    queue.respond(tid, "已联系用户", actor="bob", now=at(4))
    queue.move(tid, "handling", actor="bob", now=at(5))
    queue.move(tid, "回访", actor="bob", note="已换新机", now=at(30))
    with pytest.raises(TicketError, match="满意度"):
        queue.move(tid, "closed", actor="bob", now=at(31))
    t = queue.followup(tid, 4, actor="carol", note="用户认可", now=at(40))
    assert t.state == "closed" and t.satisfaction == 4 and t.followup_note == "用户认可"
    assert (t.acknowledged_at, t.responded_at, t.verified_at, t.resolved_at, t.closed_at) == (
        at(1), at(4), at(5), at(30), at(40))
    assert t.assignee == "bob"
    assert [(e.action, e.actor, e.from_state, e.to_state) for e in t.events] == [
        ("create", "system", None, "accepted"), ("note", "amy", None, None), ("assign", "amy", None, None),
        ("move", "bob", "accepted", "verifying"), ("respond", "bob", None, None),
        ("move", "bob", "verifying", "handling"), ("move", "bob", "handling", "follow_up"),
        ("move", "carol", "follow_up", "closed")]
    assert t.events[-1].data == {"satisfaction": 4}
    assert all(m.met_in_time for m in t.milestones)
    # Reopen: back to 处理, solution and satisfaction cleared, counted.
    t = queue.reopen(t.number, actor="amy", note="用户再次投诉", now=at(50))
    assert (t.state, t.reopened, t.resolved_at, t.closed_at, t.satisfaction) == ("handling", 1, None, None, None)
    assert t.events[-1].action == "reopen" and t.events[-1].data == {"previous_satisfaction": 4}
    with pytest.raises(TicketError, match="no ticket 999"):
        queue.note(999, "x", actor="amy")


def test_check_sla_writes_outbox_once(engine: Engine) -> None:
    """Overdue milestones put one reminder, later one escalation, per milestone in the outbox, in the same
    transaction as the ticket's marks; calling again writes nothing."""
    uids = add_posts(engine, "weibo", complaint_posts()[:1])
    clock = ManualClock(T0)
    queue = TicketQueue(engine, make_config(remind_channels=["ops"], escalate_channels=["boss"]), clock)
    inc = add_incident(engine, 1, uids)
    with engine.begin() as conn:
        tid = queue.open_for_incident(conn, inc, T0)
    clock.set(T0 + timedelta(hours=2, minutes=5))
    assert queue.check_sla() == 1
    assert queue.check_sla() == 0
    clock.set(T0 + timedelta(hours=4, minutes=5))
    assert queue.check_sla() == 1
    assert queue.check_sla() == 0
    with engine.connect() as conn:
        rows = conn.execute(select(notifications.c.key, notifications.c.channel, notifications.c.kind)
                            .order_by(notifications.c.id)).all()
        row = conn.execute(select(tickets.c.reminded, tickets.c.escalation).where(tickets.c.id == tid)).one()
    assert [tuple(r) for r in rows] == [(f"ticket:{tid}:remind:acknowledge>ops", "ops", "ticket.overdue"),
                                        (f"ticket:{tid}:escalate:acknowledge>boss", "boss", "ticket.escalated")]
    assert set(row.reminded) == {"acknowledge:remind", "acknowledge:escalate"} and row.escalation == 1
    assert _count(engine, ticket_events, ticket_events.c.action.in_(["remind", "escalate"])) == 2


def test_external_sync_rows_per_event(engine: Engine) -> None:
    """With queue.external set, creation and every action put one ticket.sync row for @external in the outbox,
    carrying the ticket and its last event."""
    uids = add_posts(engine, "weibo", complaint_posts()[:1])
    queue = TicketQueue(engine, make_config(external={"url": "https://tickets.example/hook"}))
    inc = add_incident(engine, 1, uids)
    with engine.begin() as conn:
        tid = queue.open_for_incident(conn, inc, T0)
    assert tid is not None
    queue.assign(tid, "bob", actor="amy", now=T0 + timedelta(minutes=5))
    queue.move(tid, "verifying", actor="bob", now=T0 + timedelta(minutes=6))
    with engine.connect() as conn:
        rows = conn.execute(select(notifications).order_by(notifications.c.id)).all()
    assert [r.channel for r in rows] == [EXTERNAL_CHANNEL] * 3
    assert [r.kind for r in rows] == ["ticket.sync"] * 3
    data = [r.message["data"] for r in rows]
    assert [d["last_event"]["action"] for d in data] == ["create", "assign", "move"]
    assert data[2]["state"] == "verifying" and data[2]["assignee"] == "bob" and data[2]["number"].startswith("T")
    assert data[2]["link"] == f"https://console.example/tickets/{tid}"
    assert len({r.key for r in rows}) == 3


def test_list_filters_and_overdue_first(engine: Engine) -> None:
    """list_tickets: closed hidden by default, filters by state/severity/assignee, overdue tickets first."""
    uids = add_posts(engine, "weibo", complaint_posts())
    queue = TicketQueue(engine, make_config())
    ids: list[int] = []
    for n, sev in enumerate(["red", "blue", "yellow"], start=1):
        row = add_incident(engine, n, uids[n:n + 1], severity=sev, keys=(f"topic:{n}",))
        with engine.begin() as conn:
            got = queue.open_for_incident(conn, row, T0 + timedelta(hours=n))
        assert got is not None
        ids.append(got)
    red, blue, yellow = ids
    queue.assign(red, "amy", actor="amy", now=T0 + timedelta(hours=1, minutes=1))  # acknowledged in time
    now = T0 + timedelta(hours=5, minutes=30)  # blue (created at +2h) and yellow (+3h) are past their 2 h limit
    found = queue.list_tickets(now=now)
    assert [t.id for t in found] == [yellow, blue, red]  # overdue first, then by severity
    assert [t.id for t in queue.list_tickets(overdue_only=True, now=now)] == [yellow, blue]
    assert [t.id for t in queue.list_tickets(severity="red", now=now)] == [red]
    assert [t.id for t in queue.list_tickets(assignee="amy", now=now)] == [red]
    assert [t.id for t in queue.list_tickets(assignee="-", now=now)] == [yellow, blue]
    queue.move(blue, "closed", actor="amy", note="重复投诉", now=now)
    assert blue not in [t.id for t in queue.list_tickets(now=now)]
    assert [t.id for t in queue.list_tickets(states=["closed"], now=now)] == [blue]
    by_id = queue.get(yellow, now=now)
    assert by_id is not None
    found_t = queue.get(by_id.number, now=now)  # the number finds it too
    assert found_t is not None and found_t.id == yellow and found_t.overdue[0].milestone == "acknowledge"
    assert found_t.to_json()["sla"]["acknowledge"]["overdue_seconds"] == 30 * 60


def test_portal_ticket_from_a_posts_row(engine: Engine) -> None:
    """A complaint-portal post about a watched brand, read back as a row, becomes one ticket (complainant,
    platform, demand, evidence, merchant tag); other sources and unwatched items do not."""
    add_posts(engine, "heimao", [
        {"id": "17", "title": "澄星热水器漏水拒不退款", "text": "买了一个月漏水，商家拒绝退款", "author": "消费者A",
         "extra": {"demand": "退款", "merchant": "澄星官方旗舰店", "issue": "产品质量"},
         "category": "contract_performance"},
        {"id": "18", "text": "别家的投诉", "watches": []}])
    add_posts(engine, "weibo", [{"id": "1", "text": "澄星不退款"}])
    queue = TicketQueue(engine, make_config(portal={"sources": ["heimao"], "watches": ["acme"]}))
    with engine.begin() as conn:
        rows = conn.execute(select(posts, sources.c.name.label("source_name"))
                            .join(sources, posts.c.source_id == sources.c.id).order_by(posts.c.id)).all()
        opened = [queue.open_for_post(conn, r, T0) for r in rows]
        assert queue.open_for_post(conn, rows[0], T0) == opened[0]
    assert opened[0] is not None and opened[1:] == [None, None]
    t = queue.get(opened[0], now=T0)
    assert t is not None
    assert (t.complainant, t.platform, t.demand, t.post_uid) == ("消费者A", "heimao", "退款", "heimao:17")
    assert t.evidence == ("https://heimao.example/17",) and t.category == "contract_performance"
    assert t.tags == ("澄星官方旗舰店", "产品质量", "acme")
    assert t.title == "澄星热水器漏水拒不退款"
