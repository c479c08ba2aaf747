"""Apply Alembic migrations programmatically (``monitor db upgrade`` and ``monitor run`` at start).

Alembic costs about 0.4 s to import, a fifth of the start-up budget, and most starts have nothing to migrate. So the
revision is read with plain SQL first: a database already at ``HEAD`` is left alone without importing Alembic, and an
empty database gets the tables from ``schema.py`` and is stamped at ``HEAD`` (Alembic's own advice for new
databases; ``tests/test_store.py`` checks that the migrations produce exactly these tables). Only a database at an
older revision runs the Alembic migrations.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, inspect, text

from monitor.errors import StorageError

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"
#: The newest revision under migrations/versions; a test checks it against Alembic's own view.
HEAD = "0004"


def _alembic_config() -> Any:
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    return cfg


def upgrade(engine: Engine, revision: str = "head", *, fast: bool = True) -> None:
    """Bring the database schema up to ``revision`` (``fast=False`` always goes through the Alembic migrations).

    All of it happens in one transaction, so a process killed half-way leaves the database as it was.
    """
    if revision == "head" and fast:
        with ddl_transaction(engine) as conn:
            tables = set(inspect(conn).get_table_names())
            if tables and "alembic_version" not in tables:
                _drop_unfinished_create(conn, tables)
                tables = set()
            if not tables:
                from monitor.db.schema import metadata

                metadata.create_all(conn)
                conn.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL, "
                                  "CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num))"))
                conn.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": HEAD})
                return
            current = conn.execute(text("SELECT version_num FROM alembic_version")).scalar()
            if current == HEAD:
                return
    from alembic import command

    cfg = _alembic_config()
    with ddl_transaction(engine) as conn:
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)


@contextmanager
def ddl_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a transaction that really covers DDL.

    Python's sqlite3 module (before 3.12) opens transactions only before INSERT/UPDATE/DELETE, so CREATE TABLE runs
    in autocommit and a crash between two of them leaves half a schema (Alembic marks SQLite DDL non-transactional
    for the same reason). SQLite itself has transactional DDL: here the driver's own handling is switched off and
    an explicit ``BEGIN IMMEDIATE`` (SQLAlchemy's documented pysqlite recipe) takes the write lock at once, which
    also serialises two processes migrating the same file.
    """
    with engine.connect() as conn:
        if engine.dialect.name != "sqlite":
            with conn.begin():
                yield conn
            return
        dbapi = conn.connection.driver_connection
        saved = dbapi.isolation_level  # type: ignore[union-attr]
        dbapi.isolation_level = None  # type: ignore[union-attr]
        try:
            conn.exec_driver_sql("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.rollback()
                raise
            conn.commit()
        finally:
            dbapi.isolation_level = saved  # type: ignore[union-attr]


def _drop_unfinished_create(conn: Connection, tables: set[str]) -> None:
    """Drop the empty tables an interrupted first start of an older monitor left behind (no revision stamped).

    Anything else, such as rows in those tables or tables monitor does not know, is refused: the database was
    not made by monitor, or not only by it.
    """
    from monitor.db.schema import metadata

    foreign = sorted(tables - set(metadata.tables))
    filled = sorted(t for t in tables & set(metadata.tables)
                    if conn.execute(text(f'SELECT 1 FROM "{t}" LIMIT 1')).first() is not None)
    if foreign or filled:
        raise StorageError(
            "the database has tables but no schema revision (alembic_version): "
            + (f"tables monitor does not know ({', '.join(foreign[:5])})" if foreign
               else f"rows in {', '.join(filled[:5])}")
            + "; point database.url at monitor's own database, or at a new file to start afresh")
    for table in reversed(metadata.sorted_tables):
        if table.name in tables:
            table.drop(conn)


def current_revision(engine: Engine) -> str | None:
    """The revision the database is at (None for an empty database)."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


def head_revision() -> str | None:
    """The newest revision shipped with this version of monitor."""
    from alembic.script import ScriptDirectory

    return ScriptDirectory.from_config(_alembic_config()).get_current_head()
