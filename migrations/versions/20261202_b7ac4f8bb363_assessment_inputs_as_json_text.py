"""assessments keep their inputs as json text on PostgreSQL, not jsonb

An assessment's ``inputs`` (the incident as scored, the history and the judgements: what
``reproduce`` and what-if run the engine on again) are written once and only ever read
whole, as text for a JSON parser; no query looks inside them (the facts reports count are
columns of their own, c4d7e2a9f613). Stored as ``jsonb``, every read had PostgreSQL turn
the binary form back into text: bench/whatif_bench.py measured 41 CPU-seconds of the
server's 53 for the 1,000,000 incidents of a what-if, against 16 s to read one field of
each. ``json`` keeps the text as written, so reading it is a copy.

On PostgreSQL the column's type changes in place (``USING inputs::json``): the table is
rewritten under an exclusive lock, some minutes for a million assessments; plan it for a
quiet hour. SQLite stores JSON as text already: nothing to do. Downgrade turns it back
into ``jsonb``.

Revision ID: b7ac4f8bb363
Revises: c4d7e2a9f613
Create Date: 2026-12-02 09:00:00.000000+00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "b7ac4f8bb363"
down_revision: str | None = "c4d7e2a9f613"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assessments ALTER COLUMN inputs TYPE json USING inputs::json")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE assessments ALTER COLUMN inputs TYPE jsonb USING inputs::jsonb")
