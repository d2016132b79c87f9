"""sample_event: the collection desk's events (``lab.sample_collect``, contract 1.2).

One row per op: a tube drawn or refused. ``GET /samples/{sample_id}`` and the
reconciliation's ``samples`` read it. Idempotent, like ``0002``: an adopted
database made with ``create_all`` already has the table.

Revision ID: 0004_sample_event
Revises: 0003_contract_1_2
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_sample_event"
down_revision = "0003_contract_1_2"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if sa.inspect(op.get_bind()).has_table("sample_event"):
        return  # made with create_all before migrations existed, then adopted
    op.create_table(
        "sample_event",
        sa.Column("op_id", sa.String(), nullable=False),
        sa.Column("sample_id", sa.String(), nullable=False),
        sa.Column("order_id", sa.String(), nullable=False),
        sa.Column("status", sa.String(), nullable=False),
        sa.Column("collected_at", sa.String(), nullable=False),
        sa.Column("collected_utc", sa.String(), nullable=False),
        sa.Column("reason", sa.String(), nullable=True),
        sa.Column("note", sa.String(), nullable=True),
        sa.Column("device_id", sa.String(), nullable=False),
        sa.Column("operator_id", sa.String(), nullable=False),
        sa.Column("local_date", sa.String(), nullable=False),
        sa.PrimaryKeyConstraint("op_id"),
    )
    with op.batch_alter_table("sample_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_sample_event_sample_id"), ["sample_id"], unique=False)
        batch_op.create_index("ix_sample_event_recon", ["device_id", "local_date"], unique=False)


def downgrade() -> None:
    op.drop_table("sample_event")
