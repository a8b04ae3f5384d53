"""document control

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-27 13:39:08.097329
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("procedure_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("status", sa.String(length=16), server_default="draft", nullable=False)
        )
        batch_op.add_column(sa.Column("reviewed_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("reviewed_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("review_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("approved_by", sa.String(length=100), nullable=True))
        batch_op.add_column(sa.Column("approved_at", sa.DateTime(), nullable=True))
        batch_op.add_column(sa.Column("approval_comment", sa.Text(), nullable=True))
        batch_op.add_column(sa.Column("effective_from", sa.DateTime(), nullable=True))

    # Versions deployed before document control were in effect from their deployment.
    op.execute(
        "UPDATE procedure_versions SET status = 'approved', approved_by = deployed_by,"
        " approved_at = deployed_at, effective_from = deployed_at,"
        " approval_comment = 'in effect before document control'"
    )


def downgrade() -> None:
    with op.batch_alter_table("procedure_versions", schema=None) as batch_op:
        batch_op.drop_column("effective_from")
        batch_op.drop_column("approval_comment")
        batch_op.drop_column("approved_at")
        batch_op.drop_column("approved_by")
        batch_op.drop_column("review_comment")
        batch_op.drop_column("reviewed_at")
        batch_op.drop_column("reviewed_by")
        batch_op.drop_column("status")
