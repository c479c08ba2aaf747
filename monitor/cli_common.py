"""What every CLI module shares: the --config option, loading the config, opening the store, failing clearly.

Separate from ``monitor.cli`` so command modules registered there (``alerts/incidents_cli.py``, ...) can import it
without importing ``monitor.cli`` a second time when it runs as ``python -m monitor.cli``.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, NoReturn

import click

if TYPE_CHECKING:
    from monitor.config import Config

CONFIG_HELP = "Path to config.yaml (default: ./config.yaml, or $MONITOR_CONFIG)."
config_option = click.option("--config", "-c", "config_path", type=click.Path(dir_okay=False),
                             default="config.yaml", envvar="MONITOR_CONFIG", show_default=True, help=CONFIG_HELP)


def _fail(message: str, code: int = 2) -> NoReturn:
    click.echo(message, err=True)
    sys.exit(code)


def _load(path: str, *, check_data_key: bool = False) -> Config:
    """The config at ``path``, or exit 2 saying what to fix. ``check_data_key`` (the long-running commands, run
    and serve): also refuse to start on a malformed data key, or none while ``privacy.require_key`` is set."""
    from monitor.config import load_config
    from monitor.errors import ConfigError
    from monitor.logs import setup_logging

    try:
        config = load_config(path)
    except ConfigError as exc:
        _fail(f"error: {exc}\nFix the file and run `monitor check --config {path}` again.")
    setup_logging(config.log.level, config.log.format, config.secrets)
    if check_data_key:
        from monitor.crypto import check_key

        problem = check_key(config)
        if problem:
            _fail(f"error: {problem}")
    return config


def _store(config: Config) -> Any:
    from monitor.db import Store, make_engine, upgrade
    from monitor.errors import StorageError

    try:
        store = Store(make_engine(config.database_url()))
        upgrade(store.engine)
    except StorageError as exc:
        _fail(f"error: {exc}")
    except Exception as exc:  # connection refused, bad credentials: say where and what to do
        _fail(f"error: cannot open the database {config.database.url.split('@')[-1]}: {exc}\n"
              f"Check database.url in the config and that the server is running.")
    return store


def actor_name(given: str | None = None) -> str:
    """Who is acting, for histories and the audit log: ``--actor``, else $USER, else the login name, else "cli"."""
    if given:
        return given
    import getpass
    import os

    try:
        return os.environ.get("USER") or getpass.getuser() or "cli"
    except (KeyError, OSError):  # no passwd entry in a container
        return "cli"


#: ``--actor NAME``, defaulting to :func:`actor_name`.
actor_option = click.option("--actor", default=actor_name, show_default="$USER",
                            help="Who is doing this (kept in the history and the audit log).")
