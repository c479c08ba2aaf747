"""How a complaint ended: the follow-up visit (回访) with satisfaction and an NPS answer, compensation offered, and
the outcome (did the complainant take the public complaint down).

Each action is one transaction writing the ticket's columns and a ``ticket_events`` row (through the queue's own
event writer, so the external ticketing system hears of it like of every other action). Satisfaction itself goes
through :meth:`alerts.queue.TicketQueue.followup`, which owns the 回访 → 关闭 move. :func:`incomplete` says whether
a ticket was closed without any follow-up; the console and the report show it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, select, update

from alerts import tickets as tk
from monitor.clock import Clock, SystemClock
from monitor.db.schema import tickets as tickets_t

if TYPE_CHECKING:
    from alerts.queue import Ticket, TicketQueue
    from monitor.config import Config

#: Kinds of compensation, with their Chinese names.
COMPENSATION_KINDS: dict[str, str] = {"refund": "退款", "voucher": "代金券", "replacement": "换货",
                                      "apology": "致歉", "other": "其他"}
CURRENCY = "CNY"
NPS_RANGE = range(0, 11)
#: The largest amount accepted (yuan): a typo with three extra zeros should be refused, not reported.
MAX_AMOUNT = Decimal("10000000")
#: Columns this module adds to a ticket's JSON.
OUTCOME_FIELDS = ("nps", "followup_at", "compensation", "withdrawn", "outcome_note")


def _field(ticket: Any, name: str) -> Any:
    if isinstance(ticket, Mapping):
        return ticket.get(name)
    return getattr(ticket, name, None)


def incomplete(ticket: Any) -> bool:
    """A ticket closed without a follow-up (回访): closed, no follow-up recorded and no satisfaction.

    ``ticket`` is a tickets row, a :class:`~alerts.queue.Ticket` or its JSON (a mapping); a Ticket carries no
    ``followup_at``, so for it only the satisfaction decides.
    """
    return (_field(ticket, "state") == tk.CLOSED and _field(ticket, "followup_at") is None
            and _field(ticket, "satisfaction") is None)


def nps_score(answers: Sequence[int]) -> float | None:
    """Net Promoter Score of 0-10 answers: % promoters (9-10) minus % detractors (0-6); None when no answers."""
    if not answers:
        return None
    promoters = sum(1 for a in answers if a >= 9)
    detractors = sum(1 for a in answers if a <= 6)
    return 100.0 * (promoters - detractors) / len(answers)


def parse_amount(amount: str | float | int | Decimal | None) -> str | None:
    """An amount in yuan as a decimal string with two places ("100.50"), or None; refuses negative, non-numeric
    and absurd amounts. Kept as a string so no float rounding creeps into the totals."""
    if amount is None or (isinstance(amount, str) and not amount.strip()):
        return None
    try:
        value = Decimal(str(amount).strip().replace(",", ""))
    except InvalidOperation:
        raise tk.TicketError(f"金额 {amount!r} 不是数字 / amount {amount!r} is not a number") from None
    if not value.is_finite() or value < 0 or value > MAX_AMOUNT:
        raise tk.TicketError(f"金额须在 0 到 {MAX_AMOUNT} 元之间 / the amount must be 0 to {MAX_AMOUNT} yuan")
    return str(value.quantize(Decimal("0.01")))


def outcome_columns(engine: Engine, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """Per ticket id, the outcome columns (``OUTCOME_FIELDS``; ``followup_at`` an aware datetime)."""
    out: dict[int, dict[str, Any]] = {}
    ids = list(ids)
    cols = [tickets_t.c.id, *(tickets_t.c[name] for name in OUTCOME_FIELDS)]
    with engine.connect() as conn:
        for i in range(0, len(ids), 500):  # stay under SQLite's bound-parameter limit
            for r in conn.execute(select(*cols).where(tickets_t.c.id.in_(ids[i:i + 500]))):
                row = dict(r._mapping)
                row["compensation"] = list(row["compensation"] or [])
                out[int(row.pop("id"))] = row
    return out


class Outcomes:
    """Follow-up, compensation and outcome of tickets, over one engine and config."""

    def __init__(self, engine: Engine, config: Config, clock: Clock | None = None) -> None:
        self.engine = engine
        self.config = config
        self.clock: Clock = clock or SystemClock()

    def _queue(self) -> TicketQueue:
        from alerts.queue import TicketQueue

        return TicketQueue(self.engine, self.config, self.clock)

    def followup(self, ref: int | str, satisfaction: int, *, nps: int | None = None, note: str = "",
                 actor: str, close: bool = True, now: datetime | None = None) -> Ticket:
        """Record the 回访: satisfaction 1-5 (through the queue, which closes the ticket unless ``close`` is
        False) and the NPS answer 0-10; the follow-up time is kept (a ticket with it is never "incomplete")."""
        tk.check_satisfaction(satisfaction)
        if nps is not None and nps not in NPS_RANGE:
            raise tk.TicketError(f"NPS 须为 0 到 10，收到 {nps} / the NPS answer must be 0-10, not {nps}")
        now = now or self.clock.now()
        queue = self._queue()
        after = queue.followup(ref, satisfaction, actor=actor, note=note, close=close, now=now)
        with self.engine.begin() as conn:
            conn.execute(update(tickets_t).where(tickets_t.c.id == after.id).values(
                nps=nps, followup_at=now, updated_at=now))
            if nps is not None:
                # The queue's event holds the satisfaction; this one adds the NPS answer to the history.
                queue._event(conn, after.id, now, actor, "nps", None, None, f"回访 NPS：{nps} / 10",
                             {"nps": nps, "satisfaction": satisfaction})
        return self._get(queue, after.id, now)

    def compensation(self, ref: int | str, kind: str, *, amount: str | float | int | None = None, note: str = "",
                     actor: str, now: datetime | None = None) -> Ticket:
        """Add an offer of compensation (refund, voucher, replacement, apology, other) to the ticket's list."""
        if kind not in COMPENSATION_KINDS:
            raise tk.TicketError(f"未知的补偿方式 {kind!r} / unknown compensation kind; use "
                                 f"{', '.join(COMPENSATION_KINDS)}")
        value = parse_amount(amount)
        now = now or self.clock.now()
        queue = self._queue()
        entry = {"kind": kind, "amount": value, "currency": CURRENCY, "note": note.strip()[:2000],
                 "at": now.isoformat(), "by": actor[:64]}
        with self.engine.begin() as conn:
            row = queue._row(conn, ref, lock=True)  # two handlers adding at once must not lose one entry
            listed = [*(row.compensation or []), entry]
            conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(compensation=listed,
                                                                                  updated_at=now))
            text = f"补偿：{COMPENSATION_KINDS[kind]}" + (f" {value} 元" if value is not None else "") + (
                f"（{entry['note']}）" if entry["note"] else "")
            queue._event(conn, row.id, now, actor, "compensation", None, None, text, entry)
        return self._get(queue, row.id, now)

    def outcome(self, ref: int | str, *, withdrawn: bool | None = None, note: str | None = None, actor: str,
                now: datetime | None = None) -> Ticket:
        """Record whether the complainant withdrew the public complaint and/or an outcome note."""
        if withdrawn is None and not (note or "").strip():
            raise tk.TicketError("请填写是否撤诉或结果说明 / give withdrawn and/or a note")
        now = now or self.clock.now()
        queue = self._queue()
        values: dict[str, Any] = {"updated_at": now}
        if withdrawn is not None:
            values["withdrawn"] = withdrawn
        if note is not None and note.strip():
            values["outcome_note"] = note.strip()[:4000]
        with self.engine.begin() as conn:
            row = queue._row(conn, ref, lock=True)
            conn.execute(update(tickets_t).where(tickets_t.c.id == row.id).values(**values))
            parts = [] if withdrawn is None else ["投诉人已撤诉" if withdrawn else "投诉人未撤诉"]
            if "outcome_note" in values:
                parts.append(values["outcome_note"])
            queue._event(conn, row.id, now, actor, "outcome", None, None, "结果：" + "；".join(parts),
                         {"withdrawn": withdrawn})
        return self._get(queue, row.id, now)

    @staticmethod
    def _get(queue: TicketQueue, ticket_id: int, now: datetime) -> Ticket:
        got = queue.get(ticket_id, now)
        if got is None:
            raise tk.TicketError(f"ticket {ticket_id} vanished")
        return got


__all__ = ["COMPENSATION_KINDS", "CURRENCY", "OUTCOME_FIELDS", "Outcomes", "incomplete", "nps_score",
           "outcome_columns", "parse_amount"]
