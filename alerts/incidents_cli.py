"""``monitor incidents``, ``monitor silences`` and ``monitor outbox``: the team's actions from a terminal."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import click

from monitor.cli_common import _fail, _load, _store, actor_name, actor_option, config_option


def _now() -> datetime:
    return datetime.now(UTC)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    return value


note_option = click.option("--note", default="", help="A note kept with the action.")


def _engine(config_path: str) -> tuple[Any, Any]:
    config = _load(config_path)
    return config, _store(config).engine


@click.group("incidents")
def incidents_command() -> None:
    """Incidents: list, show, acknowledge, resolve, mark real or noise."""


@incidents_command.command("list")
@config_option
@click.option("--status", type=click.Choice(["active", "open", "quiet", "resolved", "all"]), default="active",
              show_default=True)
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="One JSON object per incident.")
def incidents_list(config_path: str, status: str, limit: int, as_json: bool) -> None:
    """Incidents, newest first."""
    from alerts.actions import list_incidents
    from alerts.message import SEVERITY_ZH

    config, engine = _engine(config_path)
    rows = list_incidents(engine, status=None if status == "all" else status, limit=limit)
    if as_json:
        for r in rows:
            click.echo(json.dumps(_jsonable(r.__dict__), ensure_ascii=False))
        return
    if not rows:
        click.echo("no incidents" + ("" if status == "all" else f" ({status}); try --status all"))
        return
    click.echo(f"{'ID':>5}  {'OPENED':<11} {'SEV':<4} {'STATUS':<8} {'POSTS':>5} {'USERS':>5}  TITLE")
    for r in rows:
        opened = r.opened_at.astimezone(config.tz).strftime("%m-%d %H:%M")
        flags = (" ✓" + (r.acked_by or "") if r.acked_by else "") + (f" [{r.feedback}]" if r.feedback else "")
        click.echo(f"{r.id:>5}  {opened:<11} {SEVERITY_ZH.get(r.severity, r.severity):<4} {r.status:<8} "
                   f"{r.posts:>5} {r.authors:>5}  {r.title[:60]}{flags}")


@incidents_command.command("show")
@config_option
@click.argument("incident_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="The whole record as JSON.")
def incidents_show(config_path: str, incident_id: int, as_json: bool) -> None:
    """One incident: reasons, timeline, posts, actions and notifications."""
    from alerts.actions import NotFoundError, incident_detail
    from monitor.analysis.surge import Reason, render_reason

    config, engine = _engine(config_path)
    try:
        detail = incident_detail(engine, incident_id)
    except NotFoundError as exc:
        _fail(f"error: {exc}")
    if as_json:
        click.echo(json.dumps(_jsonable(detail), ensure_ascii=False, indent=2))
        return
    inc = detail["incident"]
    tz = config.tz
    click.echo(f"#{inc['id']} [{inc['severity']}] {inc['title']}  ({inc['status']})")
    click.echo(f"opened {inc['opened_at'].astimezone(tz):%Y-%m-%d %H:%M}, updated "
               f"{inc['updated_at'].astimezone(tz):%H:%M}; {inc['posts']} posts by {inc['authors']} authors on "
               f"{', '.join(inc['sources'] or [])}")
    if inc["keywords"]:
        click.echo("keywords: " + " ".join(inc["keywords"]))
    for code, values in inc["reasons"] or []:
        click.echo("  - " + render_reason(Reason(code, tuple((k, v) for k, v in values))))
    click.echo("timeline:")
    for p in detail["timeline"][-12:]:
        click.echo(f"  {p['at'].astimezone(tz):%m-%d %H:%M} {p['severity']:<6} score {p['score']:.1f}  "
                   f"{p['negatives']} negative / {p['posts']} posts, {p['authors']} authors ({p['key']})")
    for e in detail["events"]:
        click.echo(f"  {e['at'].astimezone(tz):%m-%d %H:%M} {e['actor']}: {e['action']} {e['note']}")
    if detail["notifications"]:
        click.echo("notifications:")
        for n in detail["notifications"]:
            click.echo(f"  {n['channel']:<16} {n['status']:<9} attempts {n['attempts']}  {n['key']}")


@incidents_command.command("ack")
@config_option
@click.argument("incident_id", type=int)
@actor_option
@note_option
def incidents_ack(config_path: str, incident_id: int, actor: str | None, note: str) -> None:
    """Acknowledge: someone is on it (repeat reminders stop)."""
    from alerts.actions import NotFoundError, acknowledge

    _, engine = _engine(config_path)
    try:
        acknowledge(engine, incident_id, actor_name(actor), _now(), note)
    except NotFoundError as exc:
        _fail(f"error: {exc}")
    click.echo(f"incident {incident_id} acknowledged")


@incidents_command.command("resolve")
@config_option
@click.argument("incident_id", type=int)
@actor_option
@note_option
@click.option("--real", "verdict", flag_value="real", help="It was a real crisis.")
@click.option("--noise", "verdict", flag_value="noise", help="It should not have fired (kept for tuning).")
def incidents_resolve(config_path: str, incident_id: int, actor: str | None, note: str, verdict: str | None) -> None:
    """Resolve an incident (optionally with the verdict real / noise)."""
    from alerts.actions import NotFoundError, feedback, resolve

    _, engine = _engine(config_path)
    try:
        dropped = resolve(engine, incident_id, actor_name(actor), _now(), note)
        if verdict:
            feedback(engine, incident_id, verdict, actor_name(actor), _now())
    except NotFoundError as exc:
        _fail(f"error: {exc}")
    click.echo(f"incident {incident_id} resolved" + (f"; {dropped} waiting message(s) dropped" if dropped else ""))


@incidents_command.command("mark")
@config_option
@click.argument("incident_id", type=int)
@click.argument("verdict", type=click.Choice(["real", "noise"]))
@actor_option
@note_option
def incidents_mark(config_path: str, incident_id: int, verdict: str, actor: str | None, note: str) -> None:
    """Mark an incident real or noise (stored for tuning the detector)."""
    from alerts.actions import NotFoundError, feedback

    _, engine = _engine(config_path)
    try:
        feedback(engine, incident_id, verdict, actor_name(actor), _now(), note)
    except NotFoundError as exc:
        _fail(f"error: {exc}")
    click.echo(f"incident {incident_id} marked {verdict}")


@click.group("silences")
def silences_command() -> None:
    """Silences: add, list, expire."""


@silences_command.command("add")
@config_option
@click.option("--watch", help="Incidents about this watch.")
@click.option("--source", help="Incidents with posts from this source.")
@click.option("--keyword", help="Incidents whose title or keywords contain this.")
@click.option("--incident", "incident_id", type=int, help="This one incident.")
@click.option("--for", "duration", default="2h", show_default=True, help="How long, e.g. 30m, 8h, 3d.")
@click.option("--until", help="Until this ISO time (instead of --for), e.g. 2026-11-24T09:00.")
@click.option("--comment", default="", help="Why (shown in the console and the log).")
@actor_option
def silences_add(config_path: str, watch: str | None, source: str | None, keyword: str | None,
                 incident_id: int | None, duration: str, until: str | None, comment: str, actor: str | None) -> None:
    """Silence matching incidents: their messages are recorded, not sent."""
    from alerts.actions import add_silence
    from monitor.durations import parse_duration
    from monitor.errors import MonitorError

    config, engine = _engine(config_path)
    now = _now()
    try:
        if until:
            end = datetime.fromisoformat(until)
            end = end if end.tzinfo else end.replace(tzinfo=config.tz)
        else:
            end = now + timedelta(seconds=parse_duration(duration))
        sid = add_silence(engine, until=end, now=now, actor=actor_name(actor), watch=watch, source=source,
                          keyword=keyword, incident_id=incident_id, comment=comment)
    except (ValueError, MonitorError) as exc:
        _fail(f"error: {exc}")
    click.echo(f"silence {sid} until {end.astimezone(config.tz):%Y-%m-%d %H:%M}")


@silences_command.command("list")
@config_option
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
def silences_list(config_path: str, show_all: bool) -> None:
    """Silences in force (config silences are in the config file)."""
    from alerts.actions import list_silences

    config, engine = _engine(config_path)
    rows = list_silences(engine, _now(), include_expired=show_all)
    if not rows:
        click.echo("no silences in force")
    for r in rows:
        what = ", ".join(f"{k}={r[k]}" for k in ("watch", "source", "keyword", "incident_id") if r[k])
        click.echo(f"{r['id']:>4}  until {r['ends_at'].astimezone(config.tz):%Y-%m-%d %H:%M}  {what}  "
                   f"by {r['created_by']}  {r['comment']}")


@silences_command.command("expire")
@config_option
@click.argument("silence_id", type=int)
def silences_expire(config_path: str, silence_id: int) -> None:
    """End a silence now."""
    from alerts.actions import NotFoundError, expire_silence

    _, engine = _engine(config_path)
    try:
        expire_silence(engine, silence_id, _now())
    except NotFoundError as exc:
        _fail(f"error: {exc}")
    click.echo(f"silence {silence_id} expired")


@click.group("outbox")
def outbox_command() -> None:
    """The notification outbox: what is pending, sent or failed."""


@outbox_command.command("list")
@config_option
@click.option("--status", type=click.Choice(["pending", "sending", "sent", "failed", "silenced", "cancelled"]))
@click.option("--limit", type=click.IntRange(1, 10_000), default=30, show_default=True)
def outbox_list(config_path: str, status: str | None, limit: int) -> None:
    """Notifications, newest first, with their delivery state."""
    from alerts.actions import list_notifications

    config, engine = _engine(config_path)
    rows = list_notifications(engine, status=status, limit=limit)
    if not rows:
        click.echo("the outbox is empty" + (f" ({status})" if status else ""))
    for r in rows:
        when = (r["sent_at"] or r["next_attempt_at"]).astimezone(config.tz)
        err = f"  {r['last_error'][:60]}" if r["last_error"] and r["status"] != "sent" else ""
        click.echo(f"{r['id']:>6} {r['status']:<9} {r['channel']:<16} {when:%m-%d %H:%M} x{r['attempts']}  "
                   f"{r['title'][:50]}{err}")


@outbox_command.command("retry")
@config_option
@click.argument("ids", type=int, nargs=-1)
def outbox_retry(config_path: str, ids: tuple[int, ...]) -> None:
    """Send failed notifications again (all failed ones, or the given ids); the daemon picks them up."""
    from alerts.actions import retry_failed

    _, engine = _engine(config_path)
    count = retry_failed(engine, _now(), list(ids) or None)
    click.echo(f"{count} notification(s) queued again")


@outbox_command.command("test")
@config_option
@click.argument("channel")
def outbox_test(config_path: str, channel: str) -> None:
    """Send a test message to one channel now and say whether it arrived (checks tokens, signing, SMTP)."""
    import asyncio
    import uuid

    import httpx

    from alerts.channels import Delivery, DeliveryError
    from alerts.delivery import build_channels
    from alerts.message import Message, PostRef
    from monitor.clock import SystemClock

    config = _load(config_path)
    try:
        config.channel(channel)
    except KeyError as exc:
        _fail(f"error: {exc.args[0]}")
    message = Message(kind="test", severity="blue", title="🔵【测试消息】舆情监控通道测试",
                      summary="这是一条测试消息：收到即说明通道配置正确。",
                      facts=(("通道", channel),), reasons=("由 monitor outbox test 发送",),
                      posts=(PostRef(text="示例帖子内容", url="https://example.com/post/1", author="示例用户",
                                     source="example"),),
                      link=config.alerts.console_url, data={"test": True})

    async def send() -> None:
        clock = SystemClock()
        async with httpx.AsyncClient() as http:
            channels = build_channels(config, http, clock)
            if channel not in channels:
                _fail(f"error: channel {channel!r} is disabled (enabled: false)")
            await channels[channel].send(message, Delivery(str(uuid.uuid4()), f"test:{channel}", 1))

    try:
        asyncio.run(send())
    except DeliveryError as exc:
        _fail(f"failed: {exc}" + ("" if exc.retryable else "\nThis will not work until the channel's settings are "
                                                           "fixed."), code=1)
    click.echo(f"sent a test message to {channel}")
