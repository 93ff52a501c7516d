"""report covering indexes: flag events by flag, role and time; incident persons by
incident and role with the person

bench/report_bench.py (an area-year over 1,000,000 incidents) found the area report
fetching a table row for every flag (its first action by a person: a minimum over its
events of two roles) and for every incident's victim and perpetrator. Both lookups are
answered from these indexes alone.

Revision ID: 8e2f4a6c1b37
Revises: 20c89037dce1
Create Date: 2026-11-30 09:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "8e2f4a6c1b37"
down_revision: str | None = "20c89037dce1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("flag_events", schema=None) as batch_op:
        batch_op.create_index(
            "ix_flag_events_flag_id_role_at", ["flag_id", "role", "at"], unique=False
        )
    with op.batch_alter_table("incident_persons", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incident_persons_incident_id_role",
            ["incident_id", "role", "person_id"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("incident_persons", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_persons_incident_id_role")
    with op.batch_alter_table("flag_events", schema=None) as batch_op:
        batch_op.drop_index("ix_flag_events_flag_id_role_at")
