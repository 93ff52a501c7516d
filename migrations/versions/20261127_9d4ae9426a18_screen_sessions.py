"""screen sessions: the browser screens' server-side sessions

The cookie holds an opaque token; only its SHA-256 is stored, with the principal as at
sign-in, a CSRF token and the purpose chosen on screen.

Revision ID: 9d4ae9426a18
Revises: b2c4e6a8d0f1
Create Date: 2026-11-27 02:56:30.508902+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql
import app.db

revision: str = "9d4ae9426a18"
down_revision: str | None = "b2c4e6a8d0f1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "screen_sessions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("key_id", sa.Uuid(), nullable=True),
        sa.Column("principal_id", sa.String(length=200), nullable=False),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("agency", sa.String(length=32), nullable=True),
        sa.Column(
            "areas",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "schools",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("label", sa.String(length=100), nullable=False),
        sa.Column("csrf_token", sa.String(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=64), nullable=True),
        sa.Column("created_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.Column("expires_at", app.db.UTCDateTime(timezone=True), nullable=False),
        sa.CheckConstraint("method IN ('api_key', 'oidc')", name=op.f("ck_screen_sessions_method")),
        sa.CheckConstraint(
            "role IN ('submitter', 'triage', 'agency', 'auditor', 'admin')",
            name=op.f("ck_screen_sessions_role"),
        ),
        sa.ForeignKeyConstraint(
            ["key_id"],
            ["api_keys.id"],
            name=op.f("fk_screen_sessions_key_id_api_keys"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_screen_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_screen_sessions_token_hash")),
    )
    with op.batch_alter_table("screen_sessions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_screen_sessions_expires_at"), ["expires_at"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_screen_sessions_key_id"), ["key_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("screen_sessions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_screen_sessions_key_id"))
        batch_op.drop_index(batch_op.f("ix_screen_sessions_expires_at"))

    op.drop_table("screen_sessions")
