"""The migrations build exactly the schema the models describe, on both databases: a model
changed without its migration (or the reverse) fails here, not on a customer's upgrade."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import event

from complaintflow.config import Settings
from complaintflow.db import Store
from complaintflow.engine import queries
from complaintflow.models import Base
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


def test_postgresql_pages_complaints_that_missed_a_deadline_through_the_index(
    pg_url: str, tmp_path: Path
) -> None:
    store = Store(Settings(home=tmp_path, database_url=pg_url, secret_key="test"))
    statements: list[tuple[str, Any]] = []

    @event.listens_for(store.engine, "before_cursor_execute")
    def _keep(_conn: Any, _cursor: Any, statement: str, params: Any, *_: Any) -> None:
        statements.append((statement, params))

    try:
        with store.read() as session:
            queries.search(session, queries.Search(missed_deadline=True, page=3))
    finally:
        store.dispose()
    ((page, params),) = [(s, p) for s, p in statements if "ORDER BY" in s]
    assert "missed_deadlines > 0" in page  # in the text, where the planner sees it
    with psycopg.connect(pg_url) as conn:
        conn.execute("SET enable_seqscan = off")  # a table this small would be scanned anyway
        plan = conn.execute("EXPLAIN " + page, params)
        assert "ix_instances_missed_started" in " ".join(row[0] for row in plan)
