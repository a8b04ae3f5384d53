"""audit head

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27 13:52:00.866075
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    # An installation from before: the head is where its log ends now.
    op.execute(
        "INSERT INTO audit_head (id, seq, hash) SELECT 1, seq, hash FROM audit_log"
        " WHERE seq = (SELECT max(seq) FROM audit_log)"
    )


def downgrade() -> None:
    op.drop_table("audit_head")
