"""``monitor tickets`` (the complaint queue) and ``monitor report`` (daily / weekly report).

Only click is imported at module level: ``monitor --help`` must stay fast. Every failure exits with code 2 and a
line saying what to do.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monitor.cli_common import _fail, _load, _store, actor_option, config_option

if TYPE_CHECKING:
    from alerts.queue import Ticket, TicketQueue
    from monitor.config import Config


def _queue(config_path: str) -> tuple[TicketQueue, Config]:
    from alerts.queue import TicketQueue

    config = _load(config_path)
    return TicketQueue(_store(config).engine, config), config


def _run(action: Any) -> Any:
    """Run one queue call, turning a refused operation into exit code 2 with its message."""
    from alerts.tickets import TicketError

    try:
        return action()
    except TicketError as exc:
        _fail(f"error: {exc}")


def _when(value: datetime | None, config: Config) -> str:
    return value.astimezone(config.tz).strftime("%Y-%m-%d %H:%M") if value else "-"


def _print_ticket(t: Ticket, config: Config) -> None:
    from alerts import tickets as tk
    from alerts.message import SEVERITY_ZH
    from monitor.analysis.category import DISPLAY_NAMES

    click.echo(f"{t.number}  (#{t.id})  【{SEVERITY_ZH.get(t.severity, t.severity)}】 {t.title}")
    click.echo(f"  状态      {tk.state_label(t.state)}" + (f"  (重新打开 {t.reopened} 次)" if t.reopened else ""))
    click.echo(f"  负责人    {t.assignee or '未分配'}")
    category = DISPLAY_NAMES.get(t.category or "", t.category or "-")
    click.echo(f"  类别      {category}   标签 {'、'.join(t.tags) or '-'}")
    click.echo(f"  投诉人    {t.complainant or '-'}   平台 {t.platform or '-'}   时间 {_when(t.occurred_at, config)}")
    click.echo(f"  诉求      {t.demand or '-'}")
    click.echo(f"  内容      {' '.join(t.content.split())[:300] or '-'}")
    for link in t.evidence:
        click.echo(f"  证据      {link}")
    if t.incident_id is not None:
        click.echo(f"  事件      #{t.incident_id}")
    if t.satisfaction is not None:
        click.echo(f"  满意度    {t.satisfaction}/5  {t.followup_note or ''}")
    click.echo("  时限:")
    for m in t.milestones:
        name = tk.MILESTONE_LABELS[m.milestone][0]
        if m.met_at is not None:
            verdict = "按时" if m.met_in_time else f"超时 {tk.format_span(m.met_at - m.deadline)}"
            state = f"完成于 {_when(m.met_at, config)} ({verdict})"
        elif m.waived:
            state = "不适用（已结案）"
        elif m.overdue_by.total_seconds() > 0:
            state = f"已超时 {tk.format_span(m.overdue_by)}"
        else:
            state = "进行中"
        click.echo(f"    {name:<6} 截止 {_when(m.deadline, config)}  {state}")
    if t.events:
        click.echo("  记录:")
    for e in t.events:
        here = tk.STATE_LABELS.get(e.from_state or "", ("",))[0]
        move = f" {here}→{tk.STATE_LABELS.get(e.to_state or '', ('',))[0]}" if e.to_state else ""
        click.echo(f"    {_when(e.at, config)}  {e.actor or '-'}  {e.action}{move}  {e.note}".rstrip())


@click.group("tickets")
def tickets_command() -> None:
    """The complaint queue: list, show, move and annotate tickets (工单)."""


@tickets_command.command("list")
@config_option
@click.option("--state", "states", multiple=True,
              help="Only this state (code or 受理/核实/处理/回访/关闭); repeatable.")
@click.option("--severity", type=click.Choice(["blue", "yellow", "orange", "red"]), help="Only this severity.")
@click.option("--assignee", help="Only tickets of this person ('-' for unassigned).")
@click.option("--overdue", is_flag=True, help="Only tickets past a deadline.")
@click.option("--all", "all_states", is_flag=True, help="Include closed tickets (default: every state but 关闭).")
@click.option("--limit", type=click.IntRange(1), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def list_tickets(config_path: str, states: tuple[str, ...], severity: str | None, assignee: str | None,
                 overdue: bool, all_states: bool, limit: int, as_json: bool) -> None:
    """List tickets: overdue first, then by severity (red first), longest lapse, oldest."""
    from alerts import tickets as tk
    from alerts.message import SEVERITY_ZH

    queue, _ = _queue(config_path)
    wanted: list[str] | None = _run(lambda: [tk.parse_state(s) for s in states]) if states else None
    if all_states and wanted is None:
        wanted = list(tk.STATES)
    found = queue.list_tickets(states=wanted, severity=severity, assignee=assignee, overdue_only=overdue,
                               limit=limit)
    if as_json:
        for t in found:
            click.echo(json.dumps(t.to_json(), ensure_ascii=False))
        return
    if not found:
        click.echo("no tickets" + (" matching the filters" if states or severity or assignee or overdue else ""))
        return
    for t in found:
        late = t.overdue
        lateness = (f"超时:{tk.MILESTONE_LABELS[max(late, key=lambda m: m.overdue_by).milestone][0]}"
                    f" {tk.format_span(t.overdue_by)}") if late else ""
        click.echo(f"{t.number}  {SEVERITY_ZH.get(t.severity, t.severity)}  {tk.STATE_LABELS[t.state][0]}  "
                   f"{t.assignee or '未分配'}  {lateness + '  ' if lateness else ''}{t.title}")
    click.echo(f"{len(found)} ticket(s)", err=True)


@tickets_command.command("show")
@click.argument("ref")
@config_option
@click.option("--json", "as_json", is_flag=True, help="The ticket, its SLA status and history as JSON.")
def show(ref: str, config_path: str, as_json: bool) -> None:
    """Show ticket REF (id or number such as T20261123-0001) with its deadlines and history."""
    queue, config = _queue(config_path)
    t = queue.get(ref)
    if t is None:
        _fail(f"error: no ticket {ref}; see `monitor tickets list --all` for the numbers")
    if as_json:
        click.echo(json.dumps(t.to_json(), ensure_ascii=False, indent=2))
    else:
        _print_ticket(t, config)


@tickets_command.command("move")
@click.argument("ref")
@click.argument("state")
@config_option
@click.option("--note", default="", help="Why (required to close as duplicate, invalid or unfounded).")
@click.option("--satisfaction", type=int, help="1-5: the follow-up visit's score (required to close from 回访).")
@actor_option
def move(ref: str, state: str, config_path: str, note: str, satisfaction: int | None, actor: str) -> None:
    """Move ticket REF to STATE (verifying/核实, handling/处理, follow_up/回访, closed/关闭)."""
    from alerts import tickets as tk

    queue, _ = _queue(config_path)
    t = _run(lambda: queue.move(ref, state, actor=actor, note=note, satisfaction=satisfaction))
    click.echo(f"{t.number}: {tk.state_label(t.state)}")


@tickets_command.command("assign")
@click.argument("ref")
@click.argument("who")
@config_option
@actor_option
def assign(ref: str, who: str, config_path: str, actor: str) -> None:
    """Give ticket REF to WHO."""
    queue, _ = _queue(config_path)
    t = _run(lambda: queue.assign(ref, who, actor=actor))
    click.echo(f"{t.number}: assigned to {t.assignee}")


@tickets_command.command("ack")
@click.argument("ref")
@config_option
@actor_option
def ack(ref: str, config_path: str, actor: str) -> None:
    """Acknowledge ticket REF (受理) without assigning or moving it."""
    queue, config = _queue(config_path)
    t = _run(lambda: queue.acknowledge(ref, actor=actor))
    click.echo(f"{t.number}: acknowledged at {_when(t.acknowledged_at, config)}")


@tickets_command.command("note")
@click.argument("ref")
@click.argument("text")
@config_option
@actor_option
def note(ref: str, text: str, config_path: str, actor: str) -> None:
    """Add a note to ticket REF's history."""
    queue, _ = _queue(config_path)
    t = _run(lambda: queue.note(ref, text, actor=actor))
    click.echo(f"{t.number}: note added")


@tickets_command.command("respond")
@click.argument("ref")
@click.argument("text")
@config_option
@actor_option
def respond(ref: str, text: str, config_path: str, actor: str) -> None:
    """Record a reply to the complainant (TEXT: what was said); the first one meets the 24 h response limit."""
    queue, config = _queue(config_path)
    t = _run(lambda: queue.respond(ref, text, actor=actor))
    click.echo(f"{t.number}: response recorded (first response {_when(t.responded_at, config)})")


@tickets_command.command("followup")
@click.argument("ref")
@click.option("--satisfaction", type=click.IntRange(1, 5), required=True, help="1 (very unhappy) to 5.")
@click.option("--note", default="", help="What the complainant said.")
@click.option("--keep-open", is_flag=True, help="Record the visit but leave the ticket in 回访.")
@config_option
@actor_option
def followup(ref: str, satisfaction: int, note: str, keep_open: bool, config_path: str, actor: str) -> None:
    """Record the follow-up visit (回访) of ticket REF and close it."""
    from alerts import tickets as tk

    queue, _ = _queue(config_path)
    t = _run(lambda: queue.followup(ref, satisfaction, actor=actor, note=note, close=not keep_open))
    click.echo(f"{t.number}: satisfaction {t.satisfaction}/5, {tk.state_label(t.state)}")


@tickets_command.command("reopen")
@click.argument("ref")
@click.option("--note", required=True, help="Why the ticket goes back to 处理.")
@config_option
@actor_option
def reopen(ref: str, note: str, config_path: str, actor: str) -> None:
    """Put ticket REF (in 回访 or 关闭) back to 处理."""
    from alerts import tickets as tk

    queue, _ = _queue(config_path)
    t = _run(lambda: queue.reopen(ref, actor=actor, note=note))
    click.echo(f"{t.number}: {tk.state_label(t.state)} (reopened {t.reopened} time(s))")


@tickets_command.command("check-sla")
@config_option
def check_sla(config_path: str) -> None:
    """Write the reminders and escalations due now to the outbox (the daemon does this on its own)."""
    queue, _ = _queue(config_path)
    click.echo(f"{queue.check_sla()} reminder(s)/escalation(s) written to the outbox")


def _period(daily: bool, weekly: bool, day: str | None, config: Config, now: datetime) -> tuple[datetime, datetime]:
    from alerts.report import day_window, week_window

    if daily and weekly:
        _fail("error: give --daily or --weekly, not both")
    if day:
        try:
            chosen = date.fromisoformat(day)
        except ValueError:
            _fail(f"error: --date {day!r} is not a date; write it like 2026-11-23")
    else:
        today = now.astimezone(config.tz).date()
        # By default the last finished period: yesterday, or last Monday-to-Sunday week.
        chosen = today - timedelta(days=7 if weekly else 1)
    return week_window(chosen, config.tz) if weekly else day_window(chosen, config.tz)


@click.command("report")
@click.option("--daily", is_flag=True, help="One calendar day (the default).")
@click.option("--weekly", is_flag=True, help="The Monday-to-Sunday week holding --date.")
@click.option("--date", "day", help="YYYY-MM-DD in the display timezone (default: yesterday / last week).")
@click.option("--format", "fmt", type=click.Choice(["markdown", "html"]), default="markdown", show_default=True)
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write to this file instead of stdout.")
@config_option
def report_command(daily: bool, weekly: bool, day: str | None, fmt: str, output: str | None,
                   config_path: str) -> None:
    """Daily or weekly report (舆情日报/周报): volumes, top incidents, SLA compliance, overdue tickets."""
    from alerts.report import build_report
    from monitor.clock import SystemClock

    config = _load(config_path)
    now = SystemClock().now()
    start, end = _period(daily, weekly, day, config, now)
    text = build_report(_store(config).engine, config, start=start, end=end, fmt=fmt, now=min(now, end))
    if output:
        try:
            Path(output).write_text(text, encoding="utf-8")
        except OSError as exc:
            _fail(f"error: cannot write {output}: {exc.strerror}; check the folder exists and is writable")
        click.echo(f"report written to {output}", err=True)
    else:
        click.echo(text, nl=False)
