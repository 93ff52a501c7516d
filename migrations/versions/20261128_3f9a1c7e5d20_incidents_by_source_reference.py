"""incidents by source reference: an index for the search without the system

``GET /v1/incidents?source_reference=…`` may name the reference alone; the unique
constraint on (source_system, source_reference) leads with the system, so it does not
serve that lookup.

Revision ID: 3f9a1c7e5d20
Revises: be1cc53153b1
Create Date: 2026-11-28 09:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "3f9a1c7e5d20"
down_revision: str | None = "be1cc53153b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index("ix_incidents_source_reference", ["source_reference"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_source_reference")
