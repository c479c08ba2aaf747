"""The ticket model (transition table, SLA clocks, reminders) and the queue's behaviour on a manual clock: outbox
rows, escalation, reopen on flare, portal tickets, external sync."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, select, update

from alerts import tickets as tk
from alerts.config import AlertsConfig, RouteConfig, RouteMatch, SlaPolicy
from alerts.incidents import Change, Incident
from alerts.queue import TicketQueue
from monitor.analysis.pipeline import Annotation
from monitor.analysis.surge import Signal
from monitor.clock import ManualClock
from monitor.db.schema import incidents, notifications, ticket_events, tickets
from monitor.normalize import Post, content_hash
from tests.test_queue_store import T0, add_incident, add_posts, complaint_posts, make_config, new_engine

# -- the transition table ------------------------------------------------------------------------------------------

#: Written out independently of alerts.tickets.TRANSITIONS: the lifecycle the team agreed on.
ALLOWED = {
    ("accepted", "verifying"), ("accepted", "closed"),
    ("verifying", "handling"), ("verifying", "closed"),
    ("handling", "follow_up"), ("handling", "verifying"),
    ("follow_up", "closed"), ("follow_up", "handling"),
    ("closed", "handling"),
}


@pytest.mark.parametrize(("current", "target"), list(itertools.product(tk.STATES, tk.STATES)))
def test_every_pair_of_states(current: str, target: str) -> None:
    """Each of the 25 pairs is allowed exactly when the agreed lifecycle says so; a refusal names the allowed
    targets in Chinese and English."""
    if (current, target) in ALLOWED:
        rule = tk.check_move(current, target, note="重复投诉", satisfaction=5)
        assert rule.reopen == (target == "handling" and current in ("follow_up", "closed"))
        return
    with pytest.raises(tk.TransitionError) as err:
        tk.check_move(current, target, note="重复投诉", satisfaction=5)
    allowed = sorted(t for c, t in ALLOWED if c == current)
    assert sorted(err.value.allowed) == allowed
    for code in allowed:
        assert tk.STATE_LABELS[code][0] in str(err.value) and code in str(err.value)


def test_refusal_message() -> None:
    """The refusal reads in both languages with the allowed targets."""
    with pytest.raises(tk.TransitionError) as err:
        tk.check_move("accepted", "follow_up")
    assert str(err.value) == ("不允许此流转：不能从「受理」转到「回访」，可转到：核实、关闭 / "
                              "cannot move a ticket from accepted to follow_up; allowed: verifying, closed")


@pytest.mark.parametrize("current", ["accepted", "verifying"])
def test_closing_early_needs_a_note(current: str) -> None:
    """Closing as duplicate, invalid or unfounded must say why."""
    with pytest.raises(tk.TicketError, match="--note"):
        tk.check_move(current, "closed", note="  ")
    assert tk.check_move(current, "closed", note="重复").note_required


def test_closing_after_follow_up_needs_satisfaction_1_to_5() -> None:
    """The follow-up visit's satisfaction is required and must be 1..5."""
    with pytest.raises(tk.TicketError, match="--satisfaction"):
        tk.check_move("follow_up", "closed")
    for bad in (0, 6, -1):
        with pytest.raises(tk.TicketError, match="1-5"):
            tk.check_move("follow_up", "closed", satisfaction=bad)
    for good in range(1, 6):
        assert tk.check_move("follow_up", "closed", satisfaction=good).satisfaction_required


@pytest.mark.parametrize(("text", "code"), [
    ("verifying", "verifying"), ("核实", "verifying"), ("回访", "follow_up"), ("follow-up", "follow_up"),
    ("FOLLOW_UP", "follow_up"), (" 关闭 ", "closed"), ("受理", "accepted"), ("处理", "handling")])
def test_parse_state(text: str, code: str) -> None:
    """Codes, Chinese labels and English labels all name a state."""
    assert tk.parse_state(text) == code


def test_parse_state_unknown() -> None:
    """An unknown name lists what is accepted."""
    with pytest.raises(tk.TicketError, match="核实/verifying"):
        tk.parse_state("done")


# -- SLA clocks ------------------------------------------------------------------------------------------------------

POLICY = SlaPolicy()


def times(**kw: Any) -> tk.TicketTimes:
    """A ticket registered at T0, in ``accepted`` unless told."""
    return tk.TicketTimes(**{"state": "accepted", "created_at": T0, **kw})


def test_deadlines_follow_the_policy() -> None:
    """2 h / 24 h / 48 h / 72 h from registration by default; another policy moves them; a reopen restarts only
    the resolve clock."""
    t = times()
    assert [tk.deadline(t, POLICY, m) - T0 for m in tk.MILESTONES] == [
        timedelta(hours=2), timedelta(hours=24), timedelta(hours=48), timedelta(hours=72)]
    fast = SlaPolicy(acknowledge=1800, respond=3600, verify=7200, resolve=86400)
    assert tk.deadline(t, fast, "acknowledge") == T0 + timedelta(minutes=30)
    reopened = times(resolve_from=T0 + timedelta(days=10))
    assert tk.deadline(reopened, POLICY, "resolve") == T0 + timedelta(days=13)
    assert tk.deadline(reopened, POLICY, "verify") == T0 + timedelta(hours=48)


def test_overdue_and_met() -> None:
    """Overdue-by is now - deadline while unmet, met - deadline when met late, zero when on time."""
    now = T0 + timedelta(hours=5)
    assert tk.overdue_by(times(), POLICY, "acknowledge", now) == timedelta(hours=3)
    assert tk.overdue_by(times(), POLICY, "respond", now) == timedelta(0)
    late = times(acknowledged_at=T0 + timedelta(hours=3))
    assert tk.overdue_by(late, POLICY, "acknowledge", now) == timedelta(hours=1)
    assert tk.met_at(late, "acknowledge") == T0 + timedelta(hours=3)
    statuses = {s.milestone: s for s in tk.status(late, POLICY, now)}
    assert statuses["acknowledge"].met_in_time is False
    assert statuses["respond"].met_in_time is None
    assert [s.milestone for s in tk.overdue(times(), POLICY, now)] == ["acknowledge"]
    assert tk.overdue(late, POLICY, now) == []
    # Closed early (duplicate): the unmet milestones are waived, not missed.
    closed = times(state="closed", acknowledged_at=T0 + timedelta(minutes=5))
    st = {s.milestone: s for s in tk.status(closed, POLICY, T0 + timedelta(days=9))}
    assert st["resolve"].waived and st["resolve"].met_in_time is None and st["acknowledge"].met_in_time is True


def test_reminder_then_escalation_each_once() -> None:
    """The reminder is due at the deadline, the escalation escalate_after later; once marked, neither comes back."""
    t = times()
    two_h = T0 + timedelta(hours=2)
    assert tk.due_alerts(t, POLICY, two_h - timedelta(seconds=1), 7200) == []
    due = tk.due_alerts(t, POLICY, two_h + timedelta(seconds=1), 7200)
    assert [(a.milestone, a.kind) for a in due] == [("acknowledge", "remind")]
    t = times(reminded=tk.marks_for(due, {}, two_h))
    assert tk.due_alerts(t, POLICY, two_h + timedelta(hours=1), 7200) == []
    due = tk.due_alerts(t, POLICY, two_h + timedelta(hours=2), 7200)
    assert [(a.milestone, a.kind) for a in due] == [("acknowledge", "escalate")]
    t = times(reminded=tk.marks_for(due, t.reminded, two_h + timedelta(hours=2)))
    assert tk.due_alerts(t, POLICY, two_h + timedelta(hours=20), 7200) == []


def test_a_late_check_sends_the_escalation_only() -> None:
    """When the check comes after both are due (daemon down), one escalation goes out and the reminder is marked."""
    now = T0 + timedelta(hours=25)
    due = tk.due_alerts(times(), POLICY, now, 7200)
    assert [(a.milestone, a.kind) for a in due] == [("acknowledge", "escalate"), ("respond", "remind")]
    marks = tk.marks_for(due, {}, now)
    assert set(marks) == {"acknowledge:escalate", "acknowledge:remind", "respond:remind"}


def test_no_alerts_once_solved_or_met() -> None:
    """Met milestones and tickets in 回访/关闭 are not chased."""
    now = T0 + timedelta(days=5)
    done = times(state="handling", acknowledged_at=T0, responded_at=T0, verified_at=T0)
    assert [a.milestone for a in tk.due_alerts(done, POLICY, now, 7200)] == ["resolve"]
    for state in ("follow_up", "closed"):
        assert tk.due_alerts(times(state=state), POLICY, now, 7200) == []


def test_format_span() -> None:
    """Chinese durations for messages."""
    assert tk.format_span(timedelta(minutes=65)) == "1小时5分钟"
    assert tk.format_span(timedelta(days=2, hours=3, minutes=7)) == "2天3小时"
    assert tk.format_span(40 * 60) == "40分钟"
    assert tk.format_span(timedelta(seconds=20)) == "不到1分钟"


# -- the queue on a manual clock ------------------------------------------------------------------------------------

@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Engine]:
    """A migrated SQLite database."""
    eng = new_engine(f"sqlite:///{tmp_path / 'q.db'}")
    yield eng
    eng.dispose()


def _open(engine: Engine, queue: TicketQueue, incident_id: int = 1, **kw: Any) -> int:
    uids = add_posts(engine, "weibo", [{**p, "id": f"{incident_id}-{p['id']}"} for p in complaint_posts()])
    row = add_incident(engine, incident_id, uids, **kw)
    with engine.begin() as conn:
        tid = queue.open_for_incident(conn, row, T0)
    assert tid is not None
    return tid


def _outbox(engine: Engine) -> list[Any]:
    with engine.connect() as conn:
        return list(conn.execute(select(notifications).order_by(notifications.c.id)).all())


def test_sla_messages_route_and_escalate(engine: Engine) -> None:
    """Without remind channels, reminders follow the ticket's route; the message is Chinese, severity first, says
    which limit was missed by how long and links the console; escalation bumps the count."""
    route = RouteConfig(match=RouteMatch(watches=["acme"]), channels=["boss"])
    clock = ManualClock(T0)
    queue = TicketQueue(engine, make_config(routes=[route], escalate_after=3600), clock)
    tid = _open(engine, queue, severity="red")
    clock.set(T0 + timedelta(hours=3, minutes=5))  # acknowledge 1 h 5 min late: reminder and (1 h) escalation
    assert queue.check_sla() == 1  # only the escalation; the reminder is marked with it
    clock.advance(60)
    assert queue.check_sla() == 0
    rows = _outbox(engine)
    assert [r.channel for r in rows] == ["boss"]
    msg = rows[0].message
    assert msg["title"] == "【红色】升级：工单 T20261123-0001 受理超时 1小时5分钟 仍未完成"
    assert msg["summary"].startswith("「受理」时限 2小时，截止 11-23 11:00，已超时 1小时5分钟。")
    assert msg["link"] == f"https://console.example/tickets/{tid}"
    assert ["负责人", "未分配"] in msg["facts"] and ["升级次数", "1"] in msg["facts"]
    with engine.connect() as conn:
        assert conn.execute(select(tickets.c.escalation).where(tickets.c.id == tid)).scalar() == 1


def test_sla_reminders_stop_when_met(engine: Engine) -> None:
    """A milestone met before its deadline raises nothing; others still come due in order, each once."""
    clock = ManualClock(T0)
    queue = TicketQueue(engine, make_config(remind_channels=["ops"], escalate_after=7200), clock)
    tid = _open(engine, queue)
    queue.assign(tid, "bob", actor="amy", now=T0 + timedelta(hours=1))
    sent = []
    for hours in range(1, 80):
        clock.set(T0 + timedelta(hours=hours))
        sent.append(queue.check_sla())
        sent.append(queue.check_sla())  # a second check at the same moment never repeats
    keys = [r.key for r in _outbox(engine)]
    assert keys == [f"ticket:{tid}:{k}:{m}>ops" for m in ("respond", "verify", "resolve")
                    for k in ("remind", "escalate")]
    assert sum(sent) == 6


def test_no_channels_still_marks(engine: Engine) -> None:
    """With nowhere to send (no enabled channel), the reminder is still marked and logged as an event."""
    clock = ManualClock(T0 + timedelta(hours=2, minutes=1))
    queue = TicketQueue(engine, make_config(channels=()), clock)
    tid = _open(engine, queue)
    assert queue.check_sla() == 1 and queue.check_sla() == 0
    assert _outbox(engine) == []
    with engine.connect() as conn:
        assert conn.execute(select(ticket_events.c.action).where(ticket_events.c.ticket_id == tid)
                            .order_by(ticket_events.c.id)).scalars().all() == ["create", "remind"]


def test_reopen_restarts_the_resolve_clock(engine: Engine) -> None:
    """A reopened ticket's resolve limit counts from the reopen, and its reminder is a new outbox key."""
    clock = ManualClock(T0)
    queue = TicketQueue(engine, make_config(remind_channels=["ops"]), clock)
    tid = _open(engine, queue)
    for state in ("verifying", "handling", "follow_up"):
        queue.move(tid, state, actor="bob", now=T0 + timedelta(hours=1))
    queue.respond(tid, "已回复", actor="bob", now=T0 + timedelta(hours=1))
    queue.followup(tid, 2, actor="bob", note="不满意", close=False, now=T0 + timedelta(hours=10))
    queue.reopen(tid, actor="bob", note="不满意，重新处理", now=T0 + timedelta(hours=70))
    clock.set(T0 + timedelta(hours=100))  # past the original 72 h but not 70 + 72
    assert queue.check_sla() == 0
    clock.set(T0 + timedelta(hours=143))
    assert queue.check_sla() == 1
    assert [r.key for r in _outbox(engine)] == [f"ticket:{tid}:remind:resolve#1>ops"]


def _incident(iid: int, keys: list[str], keywords: list[str], severity: str = "orange") -> Incident:
    return Incident(iid, T0.timestamp(), T0.timestamp(), severity, 5.0, keys, title=f"事件{iid}", keywords=keywords)


def _resolve(queue: TicketQueue, tid: int, *, close_at: Any = None) -> None:
    for state in ("verifying", "handling", "follow_up"):
        queue.move(tid, state, actor="bob", now=T0 + timedelta(hours=1))
    if close_at is not None:
        queue.followup(tid, 5, actor="bob", now=close_at)


def test_flare_reopens_by_topic_key(engine: Engine) -> None:
    """A new incident sharing a topic key with a resolved ticket's incident reopens that ticket, says why, and is
    linked to it instead of opening a second ticket."""
    queue = TicketQueue(engine, make_config())
    tid = _open(engine, queue, keys=("topic:t1", "watch:acme"))
    _resolve(queue, tid, close_at=T0 + timedelta(days=2))
    add_incident(engine, 2, [], keys=("topic:t1",), keywords=("别的",))
    flare = _incident(2, ["topic:t1"], ["别的"])
    change = Change(flare, _signal(), opened=True, escalated=False, new_posts=())
    with engine.begin() as conn:
        assert queue.handle_change(conn, change, T0 + timedelta(days=3)) == tid
    t = queue.get(tid, now=T0)
    assert t is not None and t.state == "handling" and t.reopened == 1
    assert t.events[-1].action == "reopen" and t.events[-1].actor == "system"
    assert "事件 #2" in t.events[-1].note and "topic:t1" in t.events[-1].note
    with engine.connect() as conn:
        assert conn.execute(select(incidents.c.ticket_id).where(incidents.c.id == 2)).scalar() == tid
        assert len(conn.execute(select(tickets.c.id)).all()) == 1


def test_flare_by_keywords_and_limits(engine: Engine) -> None:
    """Half the keywords shared reopens a ticket in 回访; fewer does not; a ticket closed longer ago than
    reopen_within stays closed."""
    queue = TicketQueue(engine, make_config(reopen_within=86400))
    tid = _open(engine, queue, keys=("topic:a",), keywords=("漏水", "售后", "退款", "热水器"))
    _resolve(queue, tid)  # in 回访
    with engine.begin() as conn:
        assert queue.on_incident_flare(conn, _incident(5, ["topic:b"], ["漏水", "客服", "态度"]), T0) == []
        assert queue.on_incident_flare(conn, _incident(5, ["topic:b"], ["漏水", "退款", "态度"]), T0) == [tid]
    _resolve_again(queue, tid, close_at=T0 + timedelta(days=1))
    with engine.begin() as conn:  # closed 25 h ago: outside reopen_within
        assert queue.on_incident_flare(conn, 1, T0 + timedelta(days=2, hours=1), keys=["topic:a"]) == []
        assert queue.on_incident_flare(conn, 1, T0 + timedelta(days=1, hours=23), keys=["topic:a"]) == [tid]


def _resolve_again(queue: TicketQueue, tid: int, close_at: Any) -> None:
    queue.move(tid, "follow_up", actor="bob", now=close_at)
    queue.followup(tid, 4, actor="bob", now=close_at)


def _signal() -> Signal:
    return Signal(key="topic:t1", at=T0.timestamp(), severity="orange", score=5.0, negatives=5, authors=3, posts=5,
                  sources=("weibo",), expected=1.0, engagement=0, cue_counts=(), post_ids=(), reasons=())


def test_handle_change_opens_once(engine: Engine) -> None:
    """handle_change opens the ticket of a new incident (from the tracker's Incident) and ignores plain updates."""
    queue = TicketQueue(engine, make_config())
    uids = add_posts(engine, "weibo", complaint_posts())
    add_incident(engine, 3, uids)
    inc = _incident(3, ["topic:z"], ["漏水"])
    inc.post_ids = {u: "" for u in uids}
    inc.sources = {"weibo"}
    with engine.begin() as conn:
        tid = queue.handle_change(conn, Change(inc, _signal(), True, False, ()), T0)
        assert queue.handle_change(conn, Change(inc, _signal(), False, False, ()), T0) is None
        assert queue.handle_change(conn, Change(inc, _signal(), False, True, ()), T0) == tid
    t = queue.get(tid, now=T0)  # type: ignore[arg-type]
    assert t is not None and t.incident_id == 3 and t.evidence[0] == "https://weibo.example/1"


def _portal_post(nid: str, source: str = "heimao", **extra: Any) -> Post:
    return Post(source=source, native_id=nid, text="澄星热水器漏水，商家不退款", title=f"投诉{nid}",
                fetched_at=T0, published_at=T0, url=f"https://tousu.example/{nid}", author=f"用户{nid}",
                content_hash=content_hash("", nid), extra={"demand": "退款", "merchant": "澄星", **extra})


def _note(uid: str, watches: tuple[str, ...] = ("acme",)) -> Annotation:
    return Annotation(uid=uid, negative=0.9, sentiment="negative", watches=watches, topic="t", dup_of=None,
                      category="contract_performance", cues=())


def test_portal_tickets_from_a_poll(engine: Engine) -> None:
    """open_for_posts: one ticket per complaint-portal item about a watched brand, never twice."""
    queue = TicketQueue(engine, make_config(portal={"sources": ["heimao"]}))
    batch = [_portal_post("1"), _portal_post("2"), _portal_post("3", source="weibo")]
    notes = [_note("heimao:1"), _note("heimao:2", watches=()), _note("weibo:3")]
    with engine.begin() as conn:
        opened = queue.open_for_posts(conn, batch, notes, T0)
        assert queue.open_for_posts(conn, batch, notes, T0) == opened
    assert len(opened) == 1
    t = queue.get(opened[0], now=T0)
    assert t is not None
    assert (t.post_uid, t.complainant, t.platform, t.demand, t.category) == (
        "heimao:1", "用户1", "heimao", "退款", "contract_performance")
    assert "澄星" in t.tags and t.evidence == ("https://tousu.example/1",) and t.severity == "blue"
    off = TicketQueue(engine, make_config())  # no portal sources configured: nothing
    with engine.begin() as conn:
        assert off.open_for_posts(conn, [_portal_post("9")], [_note("heimao:9")], T0) == []


def test_external_sync_only_when_configured(engine: Engine) -> None:
    """No external queue: no @external rows. With one: one row per event, keyed by the event, even for SLA
    reminders, so a retried transaction cannot send one event twice."""
    plain = TicketQueue(engine, make_config())
    tid = _open(engine, plain)
    plain.note(tid, "x", actor="amy", now=T0)
    assert _outbox(engine) == []
    clock = ManualClock(T0 + timedelta(hours=2, minutes=1))
    synced = TicketQueue(engine, make_config(channels=(), external={"url": "https://x.example"}), clock)
    synced.note(tid, "y", actor="amy")
    assert synced.check_sla() == 1
    rows = _outbox(engine)
    with engine.connect() as conn:
        events = conn.execute(select(ticket_events.c.id, ticket_events.c.action)
                              .where(ticket_events.c.ticket_id == tid).order_by(ticket_events.c.id)).all()
    assert [r.key for r in rows] == [f"ticket:{tid}:sync:{e.id}>@external" for e in events[-2:]]
    assert [r.message["data"]["last_event"]["action"] for r in rows] == ["note", "remind"]
    assert rows[1].message["data"]["reminded"] == {}  # the row is written before the marks are stored


def test_system_actions_do_not_acknowledge(engine: Engine) -> None:
    """A flare reopen by the system is not a handler acknowledging the ticket."""
    queue = TicketQueue(engine, make_config())
    tid = _open(engine, queue)
    with engine.begin() as conn:
        conn.execute(update(tickets).where(tickets.c.id == tid).values(state="closed", closed_at=T0))
    queue.reopen(tid, actor="system", note="flare", now=T0 + timedelta(minutes=1))
    assert queue.get(tid, now=T0).acknowledged_at is None  # type: ignore[union-attr]
    queue.acknowledge(tid, actor="amy", now=T0 + timedelta(minutes=2))
    queue.acknowledge(tid, actor="bob", now=T0 + timedelta(minutes=3))
    t = queue.get(tid, now=T0)
    assert t is not None and t.acknowledged_at == T0 + timedelta(minutes=2)
    assert [e.action for e in t.events].count("ack") == 1


def test_sla_reminders_wait_for_the_end_of_quiet_hours_below_their_severity(engine: Engine) -> None:
    """A yellow ticket overdue at night is reminded when quiet hours end (08:00 Asia/Shanghai); a red one at once."""
    from alerts.config import QuietHours

    night = datetime(2026, 11, 23, 16, 0, tzinfo=UTC)  # 00:00 in Shanghai
    cfg = make_config().model_copy(update={"alerts": AlertsConfig(
        console_url="https://console.example", quiet_hours=QuietHours(start="23:00", end="08:00",
                                                                      min_severity="red"))})
    clock = ManualClock(night - timedelta(hours=2, minutes=30))
    queue = TicketQueue(engine, cfg, clock)
    _open(engine, queue, 1, severity="yellow")
    _open(engine, queue, 2, severity="red")
    clock.set(night)
    # Tickets were opened at T0 by _open; their acknowledge limit (2 h) is long past at midnight.
    assert queue.check_sla() == 2  # one alert a ticket, to each of its channels
    rows = _outbox(engine)
    assert len(rows) == 2 * len(cfg.channels)
    by_severity = {r.severity: r.not_before for r in rows}
    assert by_severity["yellow"] == datetime(2026, 11, 24, 0, 0, tzinfo=UTC)
    assert by_severity["red"] == night
