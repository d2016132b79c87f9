"""Contract 1.2: an op's ``origin`` (where a back-entered slip was written) and a
payment's ``waiver`` are kept with the record; issued ids are indexed by device
and kind (``reserved_used``, ``GET /id-blocks/used``).

For the Alembic migrations of the reference central server (run by
``central serve`` / ``central migrate``). Idempotent: a column already there
(a database made with ``create_all`` after ``central/tables.py`` gained it) is
left as it is.

Revision ID: 0003_contract_1_2
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_contract_1_2"
down_revision = "0002"
branch_labels = None
depends_on = None

_COLUMNS = (("op_outcome", "origin"), ("payment", "waiver"))


def upgrade() -> None:
    inspector = sa.inspect(op.get_bind())
    for table, column in _COLUMNS:
        if column in {c["name"] for c in inspector.get_columns(table)}:
            continue
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column(column, sa.String(), nullable=True))
    if "ix_issued_device_kind" not in {i["name"] for i in inspector.get_indexes("issued_id")}:
        with op.batch_alter_table("issued_id", schema=None) as batch_op:
            batch_op.create_index("ix_issued_device_kind", ["device_id", "kind", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("issued_id", schema=None) as batch_op:
        batch_op.drop_index("ix_issued_device_kind")
    for table, column in _COLUMNS:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column(column)
