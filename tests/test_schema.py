"""The migrations build exactly the schema the models describe, on both databases: a model
changed without its migration (or the reverse) fails here, not on a customer's upgrade."""

from __future__ import annotations

from pathlib import Path

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import bindparam, select, text, update

from complaintflow.config import Settings
from complaintflow.db import Store
from complaintflow.models import Base, Role, User
from complaintflow.services import Services

# Expression indexes of one dialect, kept in their migrations only (models.py cannot say
# "PostgreSQL only" in a way autogenerate compares).
ONLY_IN_MIGRATIONS = {"ix_complaint_records_complainant_trgm"}


def _compared(name: str | None, kind: str, _parent: object) -> bool:
    return not (kind == "index" and name in ONLY_IN_MIGRATIONS)


def test_the_migrations_build_the_schema_the_models_describe(svc: Services) -> None:
    with svc.store.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"include_name": _compared})
        differences = compare_metadata(context, Base.metadata)
    assert differences == []


def test_postgresql_finds_complainants_by_part_of_the_name_through_the_index(
    pg_url: str,
) -> None:
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET enable_seqscan = off")  # a table this small would be scanned anyway
        plan = conn.execute(
            "EXPLAIN SELECT instance_id FROM complaint_records"
            " WHERE lower(complainant) LIKE '%陳大文%'"
        )
        assert "ix_complaint_records_complainant_trgm" in " ".join(row[0] for row in plan)


def test_postgresql_keeps_prepared_statements_across_reads_and_writes(
    pg_url: str, tmp_path: Path
) -> None:
    # psycopg prepares a statement run often on a connection and forgets all of them on a
    # ROLLBACK: the store's transactions must not end so, or every statement is planned again.
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    try:
        for _ in range(8):
            with store.read() as session:
                session.scalar(select(Role.key).where(Role.key == bindparam("k")), {"k": "admin"})
            with store.write() as session:
                session.execute(update(Role).where(Role.key == "admin").values(name=Role.name))
            store.rows(select(User.id).where(User.id == bindparam("uid")), {"uid": 1})
        with store.read() as session:
            prepared = session.scalars(text("SELECT statement FROM pg_prepared_statements"))
            kept = " ".join(prepared)
    finally:
        store.dispose()
    assert "FROM roles" in kept
    assert "UPDATE roles" in kept
    assert "FROM users" in kept
