"""``monitor privacy ...``: the data key, encrypting old rows, retention, a person's data exported or erased, and the
audit log. Only click is imported at import time; the database stack loads when a command runs.

``monitor run`` and ``monitor serve`` check the data key as they load the config (``_load(check_data_key=True)``):
they refuse to start (exit 2) when it is malformed, or missing while ``privacy.require_key`` is set, and otherwise
warn once that tickets are stored in plaintext.
"""

from __future__ import annotations

import json
import os
import sys
from datetime import timedelta

import click

from monitor.cli_common import _fail, _load, _store, actor_name, config_option

_ACTOR_HELP = "Who is doing this, for the audit log (default: $USER)."


@click.group("privacy")
def privacy_command() -> None:
    """Personal data: the encryption key, retention, a person's data (export / delete) and the audit log."""


@privacy_command.command("new-key")
def new_key_command() -> None:
    """Print a new random data key (base64 of 32 bytes) for $MONITOR_DATA_KEY (or privacy.key_env).

    Keep it in the environment or a secret store, never in config.yaml, and keep a copy: tickets encrypted with a
    lost key cannot be read again.
    """
    from monitor.crypto import new_key

    click.echo(new_key())


@privacy_command.command("encrypt-existing")
@config_option
def encrypt_existing_command(config_path: str) -> None:
    """Encrypt tickets' personal fields still stored in plaintext (rows written before the key was set)."""
    from sqlalchemy import select, update

    from monitor.crypto import check_key, cipher_for, is_encrypted
    from monitor.db.schema import tickets

    config = _load(config_path)
    problem = check_key(config)
    if problem:
        _fail(f"error: {problem}")
    cipher = cipher_for(config)
    if not cipher.enabled:
        _fail(f"error: {config.privacy.key_env} is not set; make a key with `monitor privacy new-key`")
    engine = _store(config).engine
    done = 0
    with engine.begin() as conn:
        rows = conn.execute(select(tickets.c.id, tickets.c.complainant, tickets.c.content, tickets.c.demand,
                                   tickets.c.evidence)).all()
        for r in rows:
            plain = {k: v for k, v in r._mapping.items()
                     if k != "id" and v not in (None, "", []) and not is_encrypted(v)}
            if plain:
                conn.execute(update(tickets).where(tickets.c.id == r.id).values(**cipher.encrypt_ticket(plain)))
                done += 1
    click.echo(f"encrypted the personal fields of {done} ticket(s); {len(rows) - done} already encrypted or empty")


@privacy_command.command("purge")
@config_option
@click.option("--dry-run", is_flag=True, help="Count what would be purged; change nothing.")
def purge_command(config_path: str, dry_run: bool) -> None:
    """Apply privacy.retention_posts_days and privacy.retention_personal_days now (the daemon does it every 6 h)."""
    from monitor.clock import SystemClock
    from monitor.retention import purge

    config = _load(config_path)
    engine = _store(config).engine
    got = purge(engine, config, SystemClock().now(), dry_run=dry_run, actor=actor_name(), role="cli")
    if not got:
        click.echo("nothing to do: set privacy.retention_posts_days and/or privacy.retention_personal_days")
        return
    click.echo(json.dumps(got, ensure_ascii=False, indent=2))


@privacy_command.command("export")
@config_option
@click.option("--person", required=True, help="The author's handle (name or id as collected).")
@click.option("--source", default=None, help="Only this source.")
@click.option("--output", "-o", type=click.Path(dir_okay=False), help="Write the JSON here (default: stdout).")
@click.option("--actor", default=None, help=_ACTOR_HELP)
def export_command(config_path: str, person: str, source: str | None, output: str | None,
                   actor: str | None) -> None:
    """Everything held about PERSON as JSON: posts, tickets naming them, incidents they appear in. Audited."""
    from monitor.clock import SystemClock
    from monitor.retention import export_person

    config = _load(config_path)
    engine = _store(config).engine
    doc = export_person(engine, config, person, source, SystemClock().now(), actor=actor_name(actor), role="cli")
    text = json.dumps(doc, ensure_ascii=False, indent=2, default=str) + "\n"
    if output:
        # The export is personal data itself: readable by its owner only.
        fd = os.open(output, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        click.echo(f"wrote {output}: {len(doc['posts'])} post(s), {len(doc['tickets'])} ticket(s), "
                   f"{len(doc['incidents'])} incident(s)", err=True)
    else:
        sys.stdout.write(text)


@privacy_command.command("delete")
@config_option
@click.option("--person", required=True, help="The author's handle (name or id as collected).")
@click.option("--source", default=None, help="Only this source.")
@click.option("--yes", is_flag=True, help="Really delete (without it, nothing happens).")
@click.option("--actor", default=None, help=_ACTOR_HELP)
def delete_command(config_path: str, person: str, source: str | None, yes: bool, actor: str | None) -> None:
    """Delete PERSON's posts and erase their personal data from tickets (tickets and their history stay).

    Cannot be undone; export first if the request needs a copy. Audited.
    """
    from monitor.clock import SystemClock
    from monitor.retention import delete_person

    if not yes:
        _fail("error: this deletes data for good; add --yes to go ahead (export first if a copy is needed)")
    config = _load(config_path)
    engine = _store(config).engine
    got = delete_person(engine, config, person, source, SystemClock().now(), actor=actor_name(actor), role="cli")
    click.echo(json.dumps(got, ensure_ascii=False, indent=2))


@privacy_command.command("audit")
@config_option
@click.option("--since", default="7d", show_default=True, help="How far back (7d, 12h).")
@click.option("--action", default=None, help="Only view, export, delete, purge or reveal.")
@click.option("--subject", default=None, help="Only this subject (ticket:5, person:<handle>).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per line.")
def audit_command(config_path: str, since: str, action: str | None, subject: str | None, as_json: bool) -> None:
    """List the audit log of personal data, newest first."""
    from monitor.audit import list_entries
    from monitor.clock import SystemClock
    from monitor.durations import parse_duration

    try:
        back = timedelta(seconds=parse_duration(since))
    except ValueError as exc:
        _fail(f"error: --since {since!r}: {exc}")
    config = _load(config_path)
    engine = _store(config).engine
    rows = list_entries(engine, since=SystemClock().now() - back, action=action, subject=subject)
    for r in rows:
        if as_json:
            click.echo(json.dumps({**r, "at": r["at"].isoformat()}, ensure_ascii=False))
        else:
            at = r["at"].astimezone(config.tz).strftime("%Y-%m-%d %H:%M:%S")
            click.echo(f"{at}  {r['action']:<7} {r['subject']:<24} {r['actor']} ({r['role']}) "
                       f"{r['address'] or '-'}  {r['detail']}")
    if not rows and not as_json:
        click.echo(f"no audit entries in the last {since}")
