"""flag work lists (partial indexes), the triage queue table, disclosures

Revision ID: 914a1c060c5d
Revises: 4ce0fd9c4b38
Create Date: 2026-11-23 05:46:48.946024+00:00

The queue table starts empty: no deployment held incidents before it existed. It is kept
by app.flags.queue.refresh_queue_row in the transaction of every change to an incident's
flags or assessment.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
import app.db

revision: str = "914a1c060c5d"
down_revision: str | None = "4ce0fd9c4b38"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The open statuses, as in app.flags.repository.OPEN_PREDICATE_SQL (the queries render the
# same literal list, so the planner can use these partial indexes).
OPEN = "status IN ('open', 'acknowledged', 'in_progress')"
FLAG_INDEXES = (
    ("ix_flags_open_priority_due_at", ["priority", "due_at", "id"]),
    ("ix_flags_open_area_priority_due_at", ["area", "priority", "due_at", "id"]),
    ("ix_flags_open_agency_area_priority_due_at", ["agency", "area", "priority", "due_at", "id"]),
    ("ix_flags_open_due_at_type_agency", ["due_at", "type", "agency"]),
)


def upgrade() -> None:
    op.create_table(
        "incident_queue",
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("area", sa.String(length=64), nullable=False),
        sa.Column("occurred_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("risk_rank", sa.Integer(), nullable=False),
        sa.Column("sort_rank", sa.Integer(), nullable=False),
        sa.Column("victim_level", sa.String(length=16), nullable=False),
        sa.Column("highest_child_level", sa.String(length=24), nullable=True),
        sa.Column("assessment_id", sa.Uuid(), nullable=False),
        sa.Column("assessment_version", sa.Integer(), nullable=False),
        sa.Column("open_flags", sa.Integer(), nullable=False),
        sa.Column("earliest_due_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["assessment_id"],
            ["assessments.id"],
            name=op.f("fk_incident_queue_assessment_id_assessments"),
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_incident_queue_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("incident_id", name=op.f("pk_incident_queue")),
    )
    with op.batch_alter_table("incident_queue", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incident_queue_area_order",
            ["area", "sort_rank", "earliest_due_at", "incident_id"],
            unique=False,
        )
        batch_op.create_index(
            "ix_incident_queue_order", ["sort_rank", "earliest_due_at", "incident_id"], unique=False
        )

    op.create_table(
        "disclosures",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("incident_id", sa.Uuid(), nullable=False),
        sa.Column("flag_id", sa.Uuid(), nullable=True),
        sa.Column("decision", sa.String(length=16), nullable=False),
        sa.Column("recipient_agency", sa.String(length=16), nullable=False),
        sa.Column("recipient_detail", sa.String(length=200), nullable=True),
        sa.Column("lawful_basis", sa.String(length=32), nullable=True),
        sa.Column("purpose", sa.String(length=1000), nullable=False),
        sa.Column(
            "categories_shared",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "subject_refs",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("consent_status", sa.String(length=24), nullable=False),
        sa.Column("reason_not_shared", sa.Text(), nullable=True),
        sa.Column("decided_by", sa.String(length=200), nullable=False),
        sa.Column("decided_by_role", sa.String(length=16), nullable=False),
        sa.Column("decided_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "consent_status IN ('given', 'refused', 'not_sought_risk', 'not_sought_unsafe')",
            name=op.f("ck_disclosures_consent_status"),
        ),
        sa.CheckConstraint(
            "decision = 'not_shared' OR lawful_basis IS NOT NULL",
            name=op.f("ck_disclosures_shared_has_basis"),
        ),
        sa.CheckConstraint(
            "decision = 'shared' OR reason_not_shared IS NOT NULL",
            name=op.f("ck_disclosures_not_shared_has_reason"),
        ),
        sa.CheckConstraint(
            "decision IN ('shared', 'not_shared')", name=op.f("ck_disclosures_decision")
        ),
        sa.CheckConstraint(
            "lawful_basis IS NULL OR lawful_basis IN ('consent', 'safeguarding', 'statutory_function', 'vital_interests', 'administration_of_justice')",
            name=op.f("ck_disclosures_lawful_basis"),
        ),
        sa.CheckConstraint(
            "recipient_agency IN ('csc', 'health', 'school', 'probation', 'idva', 'marac', 'early_help', 'police', 'housing', 'other')",
            name=op.f("ck_disclosures_recipient_agency"),
        ),
        sa.ForeignKeyConstraint(
            ["flag_id"], ["flags.id"], name=op.f("fk_disclosures_flag_id_flags")
        ),
        sa.ForeignKeyConstraint(
            ["incident_id"], ["incidents.id"], name=op.f("fk_disclosures_incident_id_incidents")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_disclosures")),
    )
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_disclosures_incident_id"), ["incident_id"], unique=False
        )

    with op.batch_alter_table("flags", schema=None) as batch_op:
        for name, columns in FLAG_INDEXES:
            batch_op.create_index(
                name,
                columns,
                unique=False,
                postgresql_where=sa.text(OPEN),
                sqlite_where=sa.text(OPEN),
            )


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        for name, _ in reversed(FLAG_INDEXES):
            batch_op.drop_index(name, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))

    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_disclosures_incident_id"))

    op.drop_table("disclosures")
    with op.batch_alter_table("incident_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_incident_queue_order")
        batch_op.drop_index("ix_incident_queue_area_order")

    op.drop_table("incident_queue")
