"""partnership role and report indexes

A new role, `partnership` (a domestic abuse partnership board or a MASH manager: area
statistics of its own areas, no case data): the check constraints on `api_keys.role` and
`screen_sessions.role` admit it. Two indexes serve the area reports (app/reports):
flags by area and time raised, and incidents by area and retention review date.

Downgrade: refused while any key or screen session has the role (the earlier schema
cannot hold them); revoke those keys and sign those sessions out first.

Revision ID: 5b1d7e3a9c62
Revises: 7c2e5b9a1d40
Create Date: 2026-11-29 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "5b1d7e3a9c62"
down_revision: str | None = "7c2e5b9a1d40"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_ROLE = "partnership"
ROLES_BEFORE = ("submitter", "triage", "agency", "auditor", "admin")
ROLES_AFTER = (*ROLES_BEFORE, NEW_ROLE)
TABLES = ("api_keys", "screen_sessions")


def _role_check(roles: tuple[str, ...]) -> str:
    return "role IN (" + ", ".join(f"'{r}'" for r in roles) + ")"


def _checks(roles: tuple[str, ...]) -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_constraint(op.f(f"ck_{table}_role"), type_="check")
            batch_op.create_check_constraint(op.f(f"ck_{table}_role"), _role_check(roles))


def upgrade() -> None:
    _checks(ROLES_AFTER)
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.create_index("ix_flags_area_created_at", ["area", "created_at"], unique=False)
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.create_index(
            "ix_incidents_area_review_due_at", ["area", "review_due_at"], unique=False
        )


def downgrade() -> None:
    conn = op.get_bind()
    in_use = 0
    for table in TABLES:
        rows = sa.table(table, sa.column("role"))
        query = sa.select(sa.func.count()).select_from(rows).where(rows.c.role == NEW_ROLE)
        in_use += int(conn.scalar(query) or 0)
    if in_use:
        raise RuntimeError(
            f"{in_use} keys or screen sessions have the role {NEW_ROLE}: "
            "revoke or sign them out before downgrading"
        )
    with op.batch_alter_table("incidents", schema=None) as batch_op:
        batch_op.drop_index("ix_incidents_area_review_due_at")
    with op.batch_alter_table("flags", schema=None) as batch_op:
        batch_op.drop_index("ix_flags_area_created_at")
    _checks(ROLES_BEFORE)
