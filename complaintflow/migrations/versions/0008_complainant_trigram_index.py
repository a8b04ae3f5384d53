"""on PostgreSQL, a trigram index for finding complainants by part of their name

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-27 17:00:00

A search for part of a name (`LIKE '%…%'`) reads every record without it: 0.7 s over a
million. pg_trgm is a trusted extension (PostgreSQL 13+): a database owner may create it. SQLite
keeps the scan; it is the embedded mode, for one site's complaints.
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

# Named here, not in models.py: an expression index in one dialect only (tests/test_schema.py).
INDEX = "ix_complaint_records_complainant_trgm"


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    # lower(): the search matches without regard to case (SQLAlchemy's icontains).
    op.execute(
        f"CREATE INDEX {INDEX} ON complaint_records USING gin (lower(complainant) gin_trgm_ops)"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"DROP INDEX IF EXISTS {INDEX}")
