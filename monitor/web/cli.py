"""``monitor serve`` (the console alone, no polling) and ``monitor web`` (password and token hashes for the config).

Only click is imported at import time: the web stack loads when a command runs.
"""

from __future__ import annotations

import secrets
import sys

import click

from monitor.cli_common import _fail, _load, _store, config_option


@click.command("serve")
@config_option
@click.option("--listen", help="host:port to listen on (default: web.listen from the config).")
def serve_command(config_path: str, listen: str | None) -> None:
    """Serve the web console and API alone, without polling (``monitor run`` serves it too when web.enabled)."""
    import asyncio
    import logging

    import uvicorn

    from monitor.logs import event
    from monitor.web.app import create_app
    from monitor.web.config import WebConfig
    from monitor.web.ops import bind, refuse_reason, server_config, startup_warnings

    config = _load(config_path, check_data_key=True)
    if listen:
        try:
            web = WebConfig.model_validate(config.web.model_dump() | {"listen": listen})
        except ValueError as exc:
            _fail(f"error: --listen: {exc}")
        config = config.model_copy(update={"web": web})
    reason = refuse_reason(config)
    if reason:
        _fail(f"error: {reason}")
    for warning in startup_warnings(config):
        click.echo(f"warning: {warning}", err=True)
    store = _store(config)
    app = create_app(config, store.engine)
    try:
        sock = bind(config.web.host, config.web.port)
    except OSError as exc:
        _fail(f"error: cannot listen on {config.web.listen}: {exc.strerror or exc}; is another process using it? "
              f"Change web.listen or use --listen.")
    host, port = sock.getsockname()[:2]
    event(logging.getLogger("monitor.web"), "web.listening", url=f"http://{_url_host(host)}:{port}/")
    click.echo(f"console on http://{_url_host(host)}:{port}/ (Ctrl-C stops it)", err=True)
    server = uvicorn.Server(server_config(app))
    try:
        asyncio.run(server.serve(sockets=[sock]))
    except KeyboardInterrupt:
        pass
    finally:
        sock.close()
        store.engine.dispose()


def _url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


@click.group("web")
def web_command() -> None:
    """Web console helpers: password hashes for web.users, tokens for web.tokens."""


@web_command.command("hash-password")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from the first line of stdin (for "
                                                          "scripts) instead of asking twice.")
def hash_password_command(from_stdin: bool) -> None:
    """Ask for a password (twice, not echoed) and print its scrypt hash for web.users[].password_hash."""
    from monitor.web.auth import hash_password

    if from_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("Password", hide_input=True, confirmation_prompt="Repeat the password",
                                err=True)
    if not password:
        _fail("error: the password is empty")
    if len(password) < 8:
        click.echo("warning: a password shorter than 8 characters is easy to guess", err=True)
    click.echo(hash_password(password))


@web_command.command("new-token")
def new_token_command() -> None:
    """Make a random API token: prints the token (give it to the machine, it is shown once) and the hash (for
    web.tokens[].token_hash)."""
    from monitor.web.auth import hash_password

    token = secrets.token_urlsafe(32)
    click.echo(f"token:      {token}")
    click.echo(f"token_hash: {hash_password(token)}")
