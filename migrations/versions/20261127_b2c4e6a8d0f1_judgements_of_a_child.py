"""judgements of a child (rules v2): subject_ref, child levels

A judgement with no subject_ref is the victim's, as before; one with a child's ref raises
that child's level on the child ladder.

Revision ID: b2c4e6a8d0f1
Revises: 5818e11b27f6
Create Date: 2026-11-26 23:50:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "b2c4e6a8d0f1"
down_revision: str | None = "5818e11b27f6"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

VICTIM_ONLY = "level IN ('standard', 'medium', 'high')"
VICTIM_OR_CHILD = (
    "(subject_ref IS NULL AND level IN ('standard', 'medium', 'high')) OR "
    "(subject_ref IS NOT NULL AND level IN "
    "('moderate', 'moderate_to_serious', 'serious', 'severe'))"
)


def upgrade() -> None:
    with op.batch_alter_table("judgements", schema=None) as batch_op:
        batch_op.drop_constraint("level", type_="check")
        batch_op.add_column(sa.Column("subject_ref", sa.String(length=64), nullable=True))
        batch_op.alter_column(
            "level", existing_type=sa.String(length=16), type_=sa.String(length=32)
        )
        batch_op.create_check_constraint("level", VICTIM_OR_CHILD)


def downgrade() -> None:
    # A child's judgement has no place in the earlier schema: it is removed with the column.
    op.execute("DELETE FROM judgements WHERE subject_ref IS NOT NULL")
    with op.batch_alter_table("judgements", schema=None) as batch_op:
        batch_op.drop_constraint("level", type_="check")
        batch_op.alter_column(
            "level", existing_type=sa.String(length=32), type_=sa.String(length=16)
        )
        batch_op.drop_column("subject_ref")
        batch_op.create_check_constraint("level", VICTIM_ONLY)
