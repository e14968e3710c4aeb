"""Alembic environment: runs on the connection handed over by `analytics.data.migrations.upgrade`.

Used online only (the app migrates its own database); `render_as_batch` lets SQLite alter tables.
"""

from alembic import context

from analytics.data import migrations, schema

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - the command-line helper always passes a connection
    raise RuntimeError("run migrations through analytics.data.migrations (storage.create_schema)")

context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    render_as_batch=True,
    **migrations.comparison_options(connection.dialect.name),
)
with context.begin_transaction():
    context.run_migrations()
