"""Alembic environment: runs on the connection monitor passes in (no alembic.ini needed)."""

from alembic import context

from monitor.db.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `monitor db upgrade --config config.yaml`")
# render_as_batch: SQLite cannot ALTER most things; batch mode copies the table instead.
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True, compare_type=True)
with context.begin_transaction():
    context.run_migrations()
