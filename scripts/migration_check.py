#!/usr/bin/env python3
"""`alembic upgrade head`, `alembic check`, `downgrade base`, `upgrade head` again,
on a throwaway SQLite file and a throwaway PostgreSQL database."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ALEMBIC = ROOT / ".venv" / "bin" / "alembic"
PSQL_ADMIN = os.environ.get(
    "TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)


def alembic(url: str, *args: str) -> None:
    env = {**os.environ, "TRIAGE_DATABASE_URL": url}
    print(f"$ alembic {' '.join(args)}  [{url.split(':')[0]}]", flush=True)
    subprocess.run([str(ALEMBIC), *args], cwd=ROOT, env=env, check=True)


def round_trip(url: str) -> None:
    alembic(url, "upgrade", "head")
    alembic(url, "check")
    alembic(url, "downgrade", "base")
    alembic(url, "upgrade", "head")
    alembic(url, "check")


def main() -> int:
    with tempfile.TemporaryDirectory() as tmp:
        round_trip(f"sqlite:///{tmp}/check.db")
    sys.path.insert(0, str(ROOT))
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    name = f"migration_check_{uuid.uuid4().hex[:10]}"
    admin = create_engine(PSQL_ADMIN, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        round_trip(make_url(PSQL_ADMIN).set(database=name).render_as_string(hide_password=False))
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
    print("migrations: clean on SQLite and PostgreSQL")
    return 0


if __name__ == "__main__":
    sys.exit(main())
