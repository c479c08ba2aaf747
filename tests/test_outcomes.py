"""Follow-up (回访) with satisfaction and NPS, compensation, the outcome, and "closed without 回访" — on SQLite and
PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import Engine, select

from alerts.outcomes import Outcomes, incomplete, nps_score, outcome_columns, parse_amount
from alerts.queue import TicketQueue
from alerts.tickets import TicketError
from monitor.db.schema import ticket_events, tickets
from tests.test_queue_store import T0, new_engine
from tests.test_scripts import cfg, portal_ticket


@pytest.fixture
def engine(db_url: str) -> Iterator[Engine]:
    """A migrated database on each backend."""
    eng = new_engine(db_url)
    yield eng
    eng.dispose()


def to_follow_up(queue: TicketQueue, tid: int) -> None:
    """受理 → 核实 → 处理 → 回访."""
    for state in ("verifying", "handling", "follow_up"):
        queue.move(tid, state, actor="amy", now=T0 + timedelta(hours=1))


def events(engine: Engine, tid: int) -> list[tuple[str, str]]:
    with engine.connect() as conn:
        return [(e.action, e.note) for e in conn.execute(
            select(ticket_events).where(ticket_events.c.ticket_id == tid).order_by(ticket_events.c.id))]


def test_followup_with_nps_closes_the_ticket(engine: Engine) -> None:
    """Satisfaction through the queue (closes), NPS and the follow-up time on the ticket, both in the history."""
    config = cfg()
    queue, out = TicketQueue(engine, config), Outcomes(engine, config)
    tid = portal_ticket(engine, queue)
    with pytest.raises(TicketError):  # not in 回访 yet
        out.followup(tid, 4, nps=9, actor="amy", now=T0)
    to_follow_up(queue, tid)
    with pytest.raises(TicketError, match="NPS"):
        out.followup(tid, 4, nps=11, actor="amy")
    with pytest.raises(TicketError):
        out.followup(tid, 6, actor="amy")
    at = T0 + timedelta(hours=30)
    after = out.followup(tid, 4, nps=9, note="用户认可", actor="amy", now=at)
    assert (after.state, after.satisfaction, after.followup_note) == ("closed", 4, "用户认可")
    cols = outcome_columns(engine, [tid])[tid]
    assert (cols["nps"], cols["followup_at"]) == (9, at)
    assert not incomplete({**cols, "state": after.state, "satisfaction": after.satisfaction})
    assert events(engine, tid)[-2:] == [("move", "用户认可"), ("nps", "回访 NPS：9 / 10")]


def test_followup_keeping_the_ticket_open(engine: Engine) -> None:
    """``close=False`` records the visit and leaves the ticket in 回访; no NPS answer is fine."""
    config = cfg()
    queue, out = TicketQueue(engine, config), Outcomes(engine, config)
    tid = portal_ticket(engine, queue)
    to_follow_up(queue, tid)
    after = out.followup(tid, 2, actor="amy", close=False, now=T0 + timedelta(hours=2))
    assert (after.state, after.satisfaction) == ("follow_up", 2)
    assert outcome_columns(engine, [tid])[tid]["nps"] is None
    assert events(engine, tid)[-1][0] == "followup"


def test_compensation_list_and_amounts(engine: Engine) -> None:
    """Each offer is appended with kind, amount (two places, a string), CNY, note, time and who; bad input is
    refused and leaves the list alone."""
    config = cfg()
    queue, out = TicketQueue(engine, config), Outcomes(engine, config)
    tid = portal_ticket(engine, queue)
    out.compensation(tid, "refund", amount="199.5", note="原路退回", actor="amy", now=T0)
    out.compensation(tid, "voucher", amount=50, actor="bob", now=T0 + timedelta(minutes=1))
    out.compensation(tid, "apology", actor="bob", now=T0 + timedelta(minutes=2))
    for bad in ("-1", "abc", "99999999999"):
        with pytest.raises(TicketError):
            out.compensation(tid, "refund", amount=bad, actor="amy")
    with pytest.raises(TicketError, match="kind"):
        out.compensation(tid, "cash", amount=1, actor="amy")
    listed = outcome_columns(engine, [tid])[tid]["compensation"]
    assert [(c["kind"], c["amount"], c["currency"], c["note"], c["by"]) for c in listed] == [
        ("refund", "199.50", "CNY", "原路退回", "amy"), ("voucher", "50.00", "CNY", "", "bob"),
        ("apology", None, "CNY", "", "bob")]
    assert listed[0]["at"] == T0.isoformat()
    assert [e for e in events(engine, tid) if e[0] == "compensation"] == [
        ("compensation", "补偿：退款 199.50 元（原路退回）"), ("compensation", "补偿：代金券 50.00 元"),
        ("compensation", "补偿：致歉")]
    assert parse_amount("1,000") == "1000.00" and parse_amount(None) is None and parse_amount(" ") is None


def test_outcome_withdrawn_and_note(engine: Engine) -> None:
    """Withdrawn and the note are kept; one of them is needed."""
    config = cfg()
    queue, out = TicketQueue(engine, config), Outcomes(engine, config)
    tid = portal_ticket(engine, queue)
    with pytest.raises(TicketError):
        out.outcome(tid, actor="amy")
    out.outcome(tid, withdrawn=True, note="用户已删除黑猫投诉", actor="amy", now=T0)
    cols = outcome_columns(engine, [tid])[tid]
    assert (cols["withdrawn"], cols["outcome_note"]) == (True, "用户已删除黑猫投诉")
    out.outcome(tid, withdrawn=False, actor="amy", now=T0)
    cols = outcome_columns(engine, [tid])[tid]
    assert (cols["withdrawn"], cols["outcome_note"]) == (False, "用户已删除黑猫投诉")
    assert [e for e in events(engine, tid) if e[0] == "outcome"] == [
        ("outcome", "结果：投诉人已撤诉；用户已删除黑猫投诉"), ("outcome", "结果：投诉人未撤诉")]
    with pytest.raises(TicketError):
        out.outcome(999, withdrawn=True, actor="amy")


def test_closed_without_followup_is_incomplete(engine: Engine) -> None:
    """Closed with neither a follow-up time nor a satisfaction: incomplete. Open tickets never are."""
    config = cfg()
    queue = TicketQueue(engine, config)
    tid = portal_ticket(engine, queue)
    assert not incomplete(queue.get(tid))
    queue.move(tid, "closed", actor="amy", note="重复投诉", now=T0)
    with engine.connect() as conn:
        row = conn.execute(select(tickets).where(tickets.c.id == tid)).one()
    assert incomplete(row) and incomplete(queue.get(tid))
    assert not incomplete({"state": "closed", "satisfaction": 3, "followup_at": None})
    assert not incomplete({"state": "closed", "satisfaction": None, "followup_at": T0})


def test_nps_score() -> None:
    """% promoters (9-10) minus % detractors (0-6); passives (7-8) count only in the total."""
    assert nps_score([]) is None
    assert nps_score([10, 9, 8, 7, 6, 0]) == pytest.approx(0.0)
    assert nps_score([10, 9, 8]) == pytest.approx(200 / 3)
    assert nps_score([0, 6, 7, 10]) == pytest.approx(-25.0)
