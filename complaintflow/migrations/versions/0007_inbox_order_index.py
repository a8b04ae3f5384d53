"""the inbox's order as a partial index over ready tasks

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-27 16:30:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

READY = sa.text("state = 'ready'")


def upgrade() -> None:
    op.create_index(
        "ix_tasks_ready_due",
        "tasks",
        ["due_at", "created_at"],
        postgresql_where=READY,
        sqlite_where=READY,
    )


def downgrade() -> None:
    op.drop_index("ix_tasks_ready_due", table_name="tasks")
