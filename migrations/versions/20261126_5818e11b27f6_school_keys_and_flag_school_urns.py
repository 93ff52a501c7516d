"""school keys name their schools; flags store the subject child's school

`api_keys.schools`: the URNs of the schools a school key serves (a JSON list). Keys made
before this revision have NULL there; a school key with no school sees no flag and no
incident, so existing school keys keep working as credentials but see nothing until an
admin revokes them and makes keys that name their schools (`triage keys create --role
agency --agency school --school URN`).

`flags.school_urn`: the URN of the school the flag's subject child attends, as the stored
incident says (`persons[].child.school.urn`), so that a school's listing filters in SQL.
Existing flags about a child are filled from their incident's latest stored body; flags of
erased incidents (no body) stay NULL. A partial index over the open flags serves a school's
work list (agency, school, then the listing's order).

Downgrade drops both columns and the index: school keys then see every school flag of
their areas again, as before this revision.

Revision ID: 5818e11b27f6
Revises: 6965bd63c0c3
Create Date: 2026-11-26 23:53:44.415494+00:00
"""

import re
from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "5818e11b27f6"
down_revision: str | None = "6965bd63c0c3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
OPEN = "status IN ('open', 'acknowledged', 'in_progress')"
INDEX = "ix_flags_open_agency_school_urn_priority_due_at"
URN = re.compile(r"^[0-9]{6,8}$")
BATCH = 500

FLAGS = sa.table(
    "flags",
    sa.column("incident_id", sa.Uuid()),
    sa.column("subject_kind", sa.String()),
    sa.column("subject_ref", sa.String()),
    sa.column("school_urn", sa.String()),
)
SUBMISSIONS = sa.table(
    "incident_submissions",
    sa.column("incident_id", sa.Uuid()),
    sa.column("revision", sa.Integer()),
    sa.column("body", JSON),
)


def upgrade() -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("schools", JSON, nullable=True))

    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.add_column(sa.Column("school_urn", sa.String(length=8), nullable=True))

    _backfill(op.get_bind())

    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index(
            INDEX,
            ["agency", "school_urn", "priority", "due_at", "id"],
            unique=False,
            postgresql_where=sa.text(OPEN),
            sqlite_where=sa.text(OPEN),
        )


def downgrade() -> None:
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index(INDEX, postgresql_where=sa.text(OPEN), sqlite_where=sa.text(OPEN))
        batch_op.drop_column("school_urn")

    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_column("schools")


def _backfill(conn: sa.Connection) -> None:
    """Each child flag's school URN from its incident's latest stored body, in batches."""
    incident_ids = list(
        conn.scalars(
            sa.select(FLAGS.c.incident_id).where(FLAGS.c.subject_kind == "child").distinct()
        )
    )
    fill = (
        FLAGS.update()
        .where(
            FLAGS.c.incident_id == sa.bindparam("b_incident"),
            FLAGS.c.subject_ref == sa.bindparam("b_ref"),
            FLAGS.c.subject_kind == "child",
        )
        .values(school_urn=sa.bindparam("b_urn"))
    )
    for batch in _batches(incident_ids):
        latest: dict[Any, Any] = {}
        for incident_id, body in conn.execute(
            sa.select(SUBMISSIONS.c.incident_id, SUBMISSIONS.c.body)
            .where(SUBMISSIONS.c.incident_id.in_(batch))
            .order_by(SUBMISSIONS.c.incident_id, SUBMISSIONS.c.revision.desc())
        ):
            latest.setdefault(incident_id, body)  # the latest revision comes first
        rows = [
            {"b_incident": incident_id, "b_ref": ref, "b_urn": urn}
            for incident_id, body in latest.items()
            for ref, urn in _child_schools(body).items()
        ]
        if rows:
            conn.execute(fill, rows)


def _batches(ids: list[Any]) -> Iterator[list[Any]]:
    for start in range(0, len(ids), BATCH):
        yield ids[start : start + BATCH]


def _child_schools(body: Any) -> dict[str, str]:
    """Child ref → school URN in a stored incident body (None once erased)."""
    if not isinstance(body, dict):
        return {}
    out = {}
    for person in body.get("persons") or []:
        if not isinstance(person, dict) or person.get("role") != "child":
            continue
        school = (person.get("child") or {}).get("school") or {}
        urn = school.get("urn") if isinstance(school, dict) else None
        if isinstance(person.get("ref"), str) and isinstance(urn, str) and URN.fullmatch(urn):
            out[person["ref"]] = urn
    return out
