"""lab_sample: one row per tube of a lab order (``samples``, contract 1.1).

For the Alembic migrations of the reference central server (run by
``central serve`` / ``central migrate``). Idempotent: a database whose
``0001`` was generated after ``central/tables.py`` gained ``LabSample``, or
that was made with ``create_all``, already has the table.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("lab_sample"):
        return
    op.create_table(
        "lab_sample",
        sa.Column("sample_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("sample_type", sa.String(), nullable=False),
        sa.Column("tests", sa.String(), nullable=False),
        sa.Column("op_id", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("sample_id"),
    )
    with op.batch_alter_table("lab_sample", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_lab_sample_order_id"), ["order_id"], unique=False)


def downgrade() -> None:
    op.drop_table("lab_sample")
