"""Apply Alembic migrations programmatically (``monitor db upgrade`` and ``monitor run`` at start).

Alembic costs about 0.4 s to import, a fifth of the start-up budget, and most starts have nothing to migrate. So the
revision is read with plain SQL first: a database already at ``HEAD`` is left alone without importing Alembic, and an
empty database gets the tables from ``schema.py`` and is stamped at ``HEAD`` (Alembic's own advice for new
databases; ``tests/test_store.py`` checks that the migrations produce exactly these tables). Only a database at an
older revision runs the Alembic migrations.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect, text

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: The newest revision under migrations/versions; a test checks it against Alembic's own view.
HEAD = "0002"


def _alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head", *, fast: bool = True) -> None:
    """Bring the database schema up to ``revision`` (``fast=False`` always goes through the Alembic migrations)."""
    if revision == "head" and fast:
        with engine.begin() as conn:
            tables = set(inspect(conn).get_table_names())
            if not tables:
                from monitor.db.schema import metadata

                metadata.create_all(conn)
                conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                                  "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})
                return
            if "alembic_version" in tables:
                current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
                if current == HEAD:
                    return
    from alembic import command

    cfg = _alembic_config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of monitor."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
