"""adult social care agency

A new agency, `adult_social_care` (adult safeguarding, Care Act 2014 s.42): API keys and
disclosures may name it. Its name is 17 characters, so the agency columns of `api_keys`,
`flags` and `disclosures` grow from 16 to 32 characters (on PostgreSQL a longer varchar
rewrites nothing), and the check constraints on `api_keys.agency` and
`disclosures.recipient_agency` admit it.

Downgrade: refused while any key, flag or disclosure names the agency (the earlier
schema cannot hold them, and deleting them silently would lose records); revoke or
remove those first.

Revision ID: 6965bd63c0c3
Revises: ccad4dd4b44b
Create Date: 2026-11-26 23:33:01.263156+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "6965bd63c0c3"
down_revision: str | None = "ccad4dd4b44b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NEW_AGENCY = "adult_social_care"
KEY_AGENCIES_BEFORE = (
    "csc",
    "health",
    "school",
    "probation",
    "idva",
    "marac",
    "early_help",
    "police",
)
KEY_AGENCIES_AFTER = (*KEY_AGENCIES_BEFORE, NEW_AGENCY)
RECIPIENTS_BEFORE = (*KEY_AGENCIES_BEFORE, "housing", "other")
RECIPIENTS_AFTER = (*KEY_AGENCIES_BEFORE, NEW_AGENCY, "housing", "other")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN (" + ", ".join(f"'{v}'" for v in values) + ")"


def _key_agency_check(agencies: tuple[str, ...]) -> str:
    return "agency IS NULL OR " + _in("agency", agencies)


def _agency_columns(length: int, before: int) -> None:
    for table, column, nullable in (
        ("api_keys", "agency", True),
        ("disclosures", "recipient_agency", False),
        ("flags", "agency", False),
    ):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.alter_column(
                column,
                existing_type=sa.String(length=before),
                type_=sa.String(length=length),
                existing_nullable=nullable,
            )


def _checks(key_agencies: tuple[str, ...], recipients: tuple[str, ...]) -> None:
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_api_keys_agency"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_api_keys_agency"), _key_agency_check(key_agencies)
        )
    with op.batch_alter_table("disclosures", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_disclosures_recipient_agency"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_disclosures_recipient_agency"), _in("recipient_agency", recipients)
        )


def upgrade() -> None:
    _agency_columns(32, before=16)
    _checks(KEY_AGENCIES_AFTER, RECIPIENTS_AFTER)


def downgrade() -> None:
    conn = op.get_bind()
    in_use = 0
    for table, column in (
        ("api_keys", "agency"),
        ("flags", "agency"),
        ("disclosures", "recipient_agency"),
    ):
        rows = sa.table(table, sa.column(column))
        query = sa.select(sa.func.count()).select_from(rows).where(rows.c[column] == NEW_AGENCY)
        in_use += int(conn.scalar(query) or 0)
    if in_use:
        raise RuntimeError(
            f"{in_use} keys, flags or disclosures name the agency {NEW_AGENCY}: "
            "revoke or remove them before downgrading"
        )
    _checks(KEY_AGENCIES_BEFORE, RECIPIENTS_BEFORE)
    _agency_columns(16, before=32)
