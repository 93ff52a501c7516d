"""oidc pending sign-ins: sign-ins through the OpenID Connect provider awaiting its callback

The state (its SHA-256 only), the PKCE code verifier, the nonce and a browser binding (its
SHA-256 only) stay on the server for at most ten minutes, and are used once.

Revision ID: be1cc53153b1
Revises: 9d4ae9426a18
Create Date: 2026-11-27 03:09:20.334261+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import app.db

revision: str = "be1cc53153b1"
down_revision: str | None = "9d4ae9426a18"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "oidc_pending_sign_ins",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("state_hash", sa.String(length=64), nullable=False),
        sa.Column("browser_hash", sa.String(length=64), nullable=False),
        sa.Column("code_verifier", sa.String(length=128), nullable=False),
        sa.Column("nonce", sa.String(length=64), nullable=False),
        sa.Column("next_path", sa.String(length=500), nullable=False),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_oidc_pending_sign_ins")),
        sa.UniqueConstraint("state_hash", name=op.f("uq_oidc_pending_sign_ins_state_hash")),
    )
    with op.batch_alter_table("oidc_pending_sign_ins", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_oidc_pending_sign_ins_expires_at"), ["expires_at"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("oidc_pending_sign_ins", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_oidc_pending_sign_ins_expires_at"))

    op.drop_table("oidc_pending_sign_ins")
