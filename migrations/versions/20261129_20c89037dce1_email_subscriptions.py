"""email subscriptions

A subscription's channel is `webhook` or `email`. An email subscription names a mailbox
(`subscriptions.email`, an agency's functional address) and has neither a URL nor a
signing secret, so `url` and `secret_encrypted` become nullable, and a check constraint
(`ck_subscriptions_target`) holds each channel to its own target.

Downgrade: refused while any email subscription exists (the earlier schema cannot hold
one, and deleting it silently would lose its notifications' history); remove them first.

Revision ID: 20c89037dce1
Revises: 5b1d7e3a9c62
Create Date: 2026-11-28 12:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "20c89037dce1"
down_revision: str | None = "5b1d7e3a9c62"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TARGET = (
    "(channel = 'webhook' AND url IS NOT NULL AND secret_encrypted IS NOT NULL"
    " AND email IS NULL)"
    " OR (channel = 'email' AND email IS NOT NULL AND url IS NULL"
    " AND secret_encrypted IS NULL)"
)


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("email", sa.String(length=254), nullable=True))
        batch_op.alter_column("url", existing_type=sa.String(length=2000), nullable=True)
        batch_op.alter_column("secret_encrypted", existing_type=sa.Text(), nullable=True)
        batch_op.drop_constraint(op.f("ck_subscriptions_channel"), type_="check")
        batch_op.create_check_constraint(
            op.f("ck_subscriptions_channel"), "channel IN ('webhook', 'email')"
        )
        batch_op.create_check_constraint(op.f("ck_subscriptions_target"), TARGET)


def downgrade() -> None:
    subscriptions = sa.table("subscriptions", sa.column("channel"))
    emails = op.get_bind().scalar(
        sa.select(sa.func.count())
        .select_from(subscriptions)
        .where(subscriptions.c.channel == "email")
    )
    if emails:
        raise RuntimeError(
            f"{emails} email subscriptions exist: remove them (and their notifications) "
            "before downgrading"
        )
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_constraint(op.f("ck_subscriptions_target"), type_="check")
        batch_op.drop_constraint(op.f("ck_subscriptions_channel"), type_="check")
        batch_op.create_check_constraint(op.f("ck_subscriptions_channel"), "channel IN ('webhook')")
        batch_op.alter_column("secret_encrypted", existing_type=sa.Text(), nullable=False)
        batch_op.alter_column("url", existing_type=sa.String(length=2000), nullable=False)
        batch_op.drop_column("email")
