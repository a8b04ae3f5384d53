"""The migrations build exactly the schema the models describe, on both databases: a model
changed without its migration (or the reverse) fails here, not on a customer's upgrade."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from complaintflow.models import Base
from complaintflow.services import Services


def test_the_migrations_build_the_schema_the_models_describe(svc: Services) -> None:
    with svc.store.engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert differences == []
