"""complaints that missed a deadline, newest first, as a partial index

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-27 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

MISSED = sa.text("missed_deadlines > 0")


def upgrade() -> None:
    op.create_index(
        "ix_instances_missed_started",
        "instances",
        ["started_at", "id"],
        postgresql_where=MISSED,
        sqlite_where=MISSED,
    )


def downgrade() -> None:
    op.drop_index("ix_instances_missed_started", table_name="instances")
