"""Alembic environment: run by `complaintflow init` with an open connection, or by the
`alembic` command (for writing new migrations) with the URL from the usual settings."""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection

from complaintflow.models import Base


def _run(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=Base.metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copy
    )
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    from complaintflow.config import Settings
    from complaintflow.db import make_engine

    with make_engine(Settings.from_env()).begin() as conn:
        _run(conn)
