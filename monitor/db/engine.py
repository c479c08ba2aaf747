"""Create SQLAlchemy engines: SQLite in WAL mode, PostgreSQL through psycopg 3."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event

from monitor.errors import StorageError


def normalise_url(url: str) -> str:
    """Map ``postgresql://`` to the psycopg 3 driver that monitor installs (SQLAlchemy defaults to psycopg2)."""
    return re.sub(r"^postgres(ql)?://", "postgresql+psycopg://", url)


def make_engine(url: str, *, echo: bool = False) -> Engine:
    """An engine for ``url``; SQLite gets WAL, a busy timeout and foreign keys."""
    url = normalise_url(url)
    if url.startswith("sqlite"):
        m = re.match(r"^sqlite(?:\+\w+)?:///(.+)$", url)
        if m and m.group(1) != ":memory:":
            folder = Path(m.group(1)).expanduser().parent
            if not folder.is_dir():
                raise StorageError(f"database folder {folder} does not exist; create it or change database.url")
        engine = create_engine(url, echo=echo, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, echo=echo, pool_pre_ping=True, pool_size=5, max_overflow=5)


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL: readers (CLI, web console) never block the daemon's writer; NORMAL is durable across app crashes in WAL.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()
