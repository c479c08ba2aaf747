"""The complaint ticket as a pure model: its states, the allowed moves between them, and its SLA clocks.

No I/O and no clock of its own: :mod:`alerts.queue` reads and writes tickets and gives the time.

Lifecycle (受理 -> 核实 -> 处理 -> 回访 -> 关闭)::

    accepted  受理 -> verifying 核实 | closed 关闭 (duplicate / invalid: note required)
    verifying 核实 -> handling 处理  | closed 关闭 (unfounded: note required)
    handling  处理 -> follow_up 回访 | verifying 核实 (verify again)
    follow_up 回访 -> closed 关闭 (satisfaction 1-5 required) | handling 处理 (not satisfied)
    closed    关闭 -> handling 处理 (reopen)

SLA milestones, each counted from registration (``created_at``) with the limits of the ticket's severity:

* acknowledge (受理): met at the first assignment, move, acknowledgement or reply by a handler;
* respond (首次回复): met by an explicit ``respond`` action recording the first reply to the complainant;
* verify (核实): met when the ticket leaves 核实 forwards (to 处理, or to 关闭 as unfounded: verification concluded);
* resolve (解决): met when the ticket enters 回访 (a solution was given). When a ticket goes back to 处理 from 回访
  or 关闭, the resolve clock starts again from that moment (``TicketTimes.resolve_from``).

A milestone still unmet when its deadline passes gets one reminder; still unmet ``escalate_after`` later, one
escalation. Both are recorded in the ticket's ``reminded`` JSON (``{"acknowledge:remind": iso time, ...}``), so
each is sent at most once. Tickets in 回访 or 关闭 are not chased: the solution has been given.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from alerts.config import SlaPolicy
from monitor.errors import MonitorError

ACCEPTED, VERIFYING, HANDLING, FOLLOW_UP, CLOSED = "accepted", "verifying", "handling", "follow_up", "closed"
#: States in lifecycle order.
STATES = (ACCEPTED, VERIFYING, HANDLING, FOLLOW_UP, CLOSED)
#: States in which the team still owes the complainant something: SLA reminders apply only here.
OPEN_STATES = (ACCEPTED, VERIFYING, HANDLING)
#: (Chinese, English) label of each state.
STATE_LABELS: dict[str, tuple[str, str]] = {
    ACCEPTED: ("受理", "accepted"),
    VERIFYING: ("核实", "verifying"),
    HANDLING: ("处理", "handling"),
    FOLLOW_UP: ("回访", "follow-up"),
    CLOSED: ("关闭", "closed"),
}

ACKNOWLEDGE, RESPOND, VERIFY, RESOLVE = "acknowledge", "respond", "verify", "resolve"
#: SLA milestones in the order they fall due.
MILESTONES = (ACKNOWLEDGE, RESPOND, VERIFY, RESOLVE)
#: (Chinese, English) label of each milestone.
MILESTONE_LABELS: dict[str, tuple[str, str]] = {
    ACKNOWLEDGE: ("受理", "acknowledge"),
    RESPOND: ("首次回复", "first response"),
    VERIFY: ("核实", "verification"),
    RESOLVE: ("解决", "solution"),
}
#: Kinds of SLA alert: the reminder at the deadline, the escalation ``escalate_after`` later.
REMIND, ESCALATE = "remind", "escalate"

#: Satisfaction scores a follow-up visit records (1 very dissatisfied ... 5 very satisfied).
SATISFACTION_RANGE = range(1, 6)


class TicketError(MonitorError):
    """A ticket operation was refused (bad state name, missing note or satisfaction, unknown ticket)."""


class TransitionError(TicketError):
    """A move the lifecycle does not allow; the message names the allowed targets in Chinese and English."""

    def __init__(self, message: str, *, current: str, target: str, allowed: tuple[str, ...]) -> None:
        self.current = current
        self.target = target
        self.allowed = allowed
        super().__init__(message)


@dataclass(frozen=True)
class Rule:
    """One allowed move: what it means and what it needs."""

    meaning: str  # shown in errors and docs, Chinese first
    note_required: bool = False
    satisfaction_required: bool = False
    reopen: bool = False  # a return to 处理 after a solution was given: restarts the resolve clock


#: The explicit transition table: current state -> target state -> rule. Anything absent is refused.
TRANSITIONS: dict[str, dict[str, Rule]] = {
    ACCEPTED: {
        VERIFYING: Rule("开始核实 / start verifying"),
        CLOSED: Rule("重复或无效投诉，直接关闭 / duplicate or invalid", note_required=True),
    },
    VERIFYING: {
        HANDLING: Rule("核实属实，进入处理 / verified, start handling"),
        CLOSED: Rule("核实不属实，关闭 / unfounded", note_required=True),
    },
    HANDLING: {
        FOLLOW_UP: Rule("已给出解决方案，待回访 / solution given, follow up"),
        VERIFYING: Rule("需要重新核实 / verify again"),
    },
    FOLLOW_UP: {
        CLOSED: Rule("回访完成，记录满意度 / follow-up done", satisfaction_required=True),
        HANDLING: Rule("客户不满意，重新处理 / not satisfied, handle again", reopen=True),
    },
    CLOSED: {
        HANDLING: Rule("重新打开 / reopen", reopen=True),
    },
}


def state_label(state: str) -> str:
    """``核实 (verifying)``: how a state is shown to people."""
    zh, en = STATE_LABELS.get(state, (state, state))
    return f"{zh} ({en})"


def parse_state(text: str) -> str:
    """A state code from a code (``verifying``), a Chinese label (``核实``) or an English label (``follow-up``).

    Raises :class:`TicketError` listing the accepted names.
    """
    wanted = text.strip().lower().replace("-", "_").replace(" ", "_")
    for code, (zh, en) in STATE_LABELS.items():
        if wanted in (code, zh, en.replace("-", "_")):
            return code
    names = "、".join(f"{zh}/{code}" for code, (zh, _) in STATE_LABELS.items())
    raise TicketError(f"未知状态 {text!r}；可用：{names} / unknown state {text!r}; use one of: "
                      f"{', '.join(STATES)}")


def allowed_targets(state: str) -> tuple[str, ...]:
    """The states a ticket in ``state`` may move to, in lifecycle order."""
    targets = TRANSITIONS.get(state, {})
    return tuple(s for s in STATES if s in targets)


def check_move(current: str, target: str, *, note: str = "", satisfaction: int | None = None) -> Rule:
    """The rule for moving from ``current`` to ``target``, or an error saying what is allowed or missing.

    Raises :class:`TransitionError` for a move the table refuses and :class:`TicketError` when the move needs a
    note (closing as duplicate/invalid/unfounded) or a satisfaction score (closing after the follow-up visit).
    """
    rule = TRANSITIONS.get(current, {}).get(target)
    if rule is None:
        allowed = allowed_targets(current)
        zh = "、".join(STATE_LABELS[s][0] for s in allowed) or "无"
        en = ", ".join(allowed) or "none"
        why = "状态未变" if current == target else "不允许此流转"
        here, there = STATE_LABELS.get(current, (current,))[0], STATE_LABELS.get(target, (target,))[0]
        raise TransitionError(
            f"{why}：不能从「{here}」转到「{there}」，"
            f"可转到：{zh} / cannot move a ticket from {current} to {target}; allowed: {en}",
            current=current, target=target, allowed=allowed)
    if rule.note_required and not note.strip():
        raise TicketError(f"从「{STATE_LABELS[current][0]}」关闭需要写明原因（重复/无效/不属实），用 --note 给出 / "
                          f"closing from {current} needs a note saying why (duplicate, invalid, unfounded)")
    if rule.satisfaction_required and satisfaction is None:
        raise TicketError("回访后关闭需要记录满意度 1-5，用 --satisfaction 给出 / closing after the follow-up visit "
                          "needs a satisfaction score 1-5")
    if satisfaction is not None:
        check_satisfaction(satisfaction)
    return rule


def check_satisfaction(score: int) -> int:
    """``score`` if it is 1..5, else :class:`TicketError`."""
    if score not in SATISFACTION_RANGE:
        raise TicketError(f"满意度必须是 1-5 的整数，收到 {score} / satisfaction must be 1 to 5, got {score}")
    return score


# -- SLA clocks ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TicketTimes:
    """What the SLA clocks need to know about one ticket."""

    state: str
    created_at: datetime
    acknowledged_at: datetime | None = None
    responded_at: datetime | None = None
    verified_at: datetime | None = None
    resolved_at: datetime | None = None
    resolve_from: datetime | None = None  # the last return to 处理 after a solution; None = never reopened
    reminded: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class MilestoneStatus:
    """One milestone of one ticket at a moment: deadline, when met, and by how much it is (or was) late."""

    milestone: str
    deadline: datetime
    met_at: datetime | None
    overdue_by: timedelta  # zero when met in time or not yet due
    waived: bool  # the ticket was settled without it (closed as duplicate, in 回访 without a recorded reply)

    @property
    def met_in_time(self) -> bool | None:
        """True met in time, False late or missed, None not decided yet (or waived)."""
        if self.waived:
            return None
        if self.met_at is not None:
            return self.met_at <= self.deadline
        return False if self.overdue_by > timedelta(0) else None


@dataclass(frozen=True)
class DueAlert:
    """A reminder or escalation due now for one milestone."""

    milestone: str
    kind: str  # remind | escalate
    deadline: datetime
    overdue_by: timedelta

    @property
    def mark(self) -> str:
        """Its key in the ticket's ``reminded`` JSON."""
        return f"{self.milestone}:{self.kind}"


def _limit(policy: SlaPolicy, milestone: str) -> float:
    return float(getattr(policy, milestone))


def deadline(times: TicketTimes, policy: SlaPolicy, milestone: str) -> datetime:
    """When ``milestone`` falls due: registration + the policy's limit (resolve: from the last reopen, if any)."""
    start = times.resolve_from if milestone == RESOLVE and times.resolve_from else times.created_at
    return start + timedelta(seconds=_limit(policy, milestone))


def met_at(times: TicketTimes, milestone: str) -> datetime | None:
    """When ``milestone`` was met, or None."""
    return {ACKNOWLEDGE: times.acknowledged_at, RESPOND: times.responded_at, VERIFY: times.verified_at,
            RESOLVE: times.resolved_at}[milestone]


def overdue_by(times: TicketTimes, policy: SlaPolicy, milestone: str, now: datetime) -> timedelta:
    """How late ``milestone`` is (unmet: now - deadline) or was (met late: met - deadline); zero if on time."""
    due = deadline(times, policy, milestone)
    done = met_at(times, milestone)
    late = (done if done is not None else now) - due
    return max(late, timedelta(0))


def is_waived(times: TicketTimes, milestone: str) -> bool:
    """An unmet milestone of a ticket past the open states: nothing to chase any more."""
    return met_at(times, milestone) is None and times.state not in OPEN_STATES


def status(times: TicketTimes, policy: SlaPolicy, now: datetime) -> tuple[MilestoneStatus, ...]:
    """Every milestone of the ticket at ``now``."""
    out = []
    for m in MILESTONES:
        waived = is_waived(times, m)
        out.append(MilestoneStatus(m, deadline(times, policy, m), met_at(times, m),
                                   timedelta(0) if waived else overdue_by(times, policy, m, now), waived))
    return tuple(out)


def overdue(times: TicketTimes, policy: SlaPolicy, now: datetime) -> list[MilestoneStatus]:
    """The milestones of an open ticket that are unmet and past their deadline at ``now``."""
    if times.state not in OPEN_STATES:
        return []
    return [s for s in status(times, policy, now) if s.met_at is None and s.overdue_by > timedelta(0)]


def due_alerts(times: TicketTimes, policy: SlaPolicy, now: datetime, escalate_after: float) -> list[DueAlert]:
    """Reminders and escalations due at ``now`` and not sent yet (per ``times.reminded``).

    The reminder is due at the deadline, the escalation ``escalate_after`` seconds later. When a check comes so
    late that both are due at once (the daemon was down), only the escalation is returned: the caller marks the
    reminder as done too (:func:`marks_for`), so nobody gets two messages about one lapse.
    """
    if times.state not in OPEN_STATES:
        return []
    out = []
    for s in overdue(times, policy, now):
        if s.overdue_by.total_seconds() >= escalate_after and f"{s.milestone}:{ESCALATE}" not in times.reminded:
            out.append(DueAlert(s.milestone, ESCALATE, s.deadline, s.overdue_by))
        elif f"{s.milestone}:{REMIND}" not in times.reminded and f"{s.milestone}:{ESCALATE}" not in times.reminded:
            out.append(DueAlert(s.milestone, REMIND, s.deadline, s.overdue_by))
    return out


def marks_for(alerts: list[DueAlert], reminded: Mapping[str, Any], now: datetime) -> dict[str, Any]:
    """The ``reminded`` JSON after sending ``alerts`` at ``now`` (an escalation also marks its reminder)."""
    out = dict(reminded)
    for a in alerts:
        out[a.mark] = now.isoformat()
        if a.kind == ESCALATE:
            out.setdefault(f"{a.milestone}:{REMIND}", now.isoformat())
    return out


def clear_resolve_marks(reminded: Mapping[str, Any] | None) -> dict[str, Any]:
    """``reminded`` without the resolve marks: a reopened ticket's new resolve clock may remind again."""
    return {k: v for k, v in (reminded or {}).items() if not k.startswith(f"{RESOLVE}:")}


def format_span(delta: timedelta | float) -> str:
    """A duration in Chinese for messages and reports: ``2天3小时``, ``1小时5分钟``, ``40分钟``, ``不到1分钟``."""
    seconds = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    if seconds < 60:
        return "不到1分钟"
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes = rest // 60
    parts = []
    if days:
        parts.append(f"{days}天")
    if hours:
        parts.append(f"{hours}小时")
    if minutes and not days:  # minutes are noise on a span of days
        parts.append(f"{minutes}分钟")
    return "".join(parts) or "不到1分钟"
