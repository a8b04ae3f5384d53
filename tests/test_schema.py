"""The migrations build exactly the schema the models describe, on both databases: a model
changed without its migration (or the reverse) fails here, not on a customer's upgrade."""

from __future__ import annotations

import psycopg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

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
