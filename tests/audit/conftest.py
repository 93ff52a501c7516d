"""A fresh database per test, on SQLite and (when TRIAGE_TEST_POSTGRES_URL is set) PostgreSQL.

Only the audit tables are created, with ``create_all``; the application creates them with
its Alembic migration. Nothing is shared between tests: SQLite gets a file in ``tmp_path``,
PostgreSQL a ``CREATE DATABASE audit_test_<random hex>`` that is dropped afterwards.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, make_url

from app.audit import AuditEntry, AuditEvent, AuditEventRecord, append, digest_of
from app.audit.models import AuditPendingEvent
from app.db import Base, Database

POSTGRES_URL = os.environ.get("TRIAGE_TEST_POSTGRES_URL")
BACKENDS = ["sqlite"] + (["postgres"] if POSTGRES_URL else [])
AUDIT_TABLES = [AuditEvent.__table__, AuditEventRecord.__table__, AuditPendingEvent.__table__]


def create_audit_tables(db: Database) -> None:
    Base.metadata.create_all(db.engine, tables=AUDIT_TABLES)


def _postgres_url() -> Iterator[str]:
    assert POSTGRES_URL is not None
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
    name = f"audit_test_{secrets.token_hex(8)}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        try:
            yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        admin.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of an empty database of its own, on each backend."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'audit.db'}"
    else:
        yield from _postgres_url()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    """A ``Database`` (the application's engine setup) with empty audit tables."""
    database = Database(database_url)
    create_audit_tables(database)
    try:
        yield database
    finally:
        database.dispose()


T0 = datetime(2026, 3, 1, 9, 30, 0, 123456, tzinfo=UTC)


def _make_entry(n: int = 0, **overrides: Any) -> AuditEntry:
    """A plausible entry; ``n`` varies the ids and time. Ids are synthetic, never real data."""
    values: dict[str, Any] = {
        "principal_id": f"key:submitter-{n % 3}",
        "role": "submitter",
        "agency": "police:force-01",
        "operation": "collect",
        "record_type": "incident",
        "record_ids": [f"incident-{n}", f"assessment-{n}"],
        "person_ids": [f"person-{n}", f"person-{n + 1}"],
        "purpose": "intake",
        "recipients": [],
        "request_id": f"req-{n:08d}",
        "route": "/v1/incidents",
        "digest": digest_of({"n": n}),
        "detail": {"persons": 2, "outcome": "created"},
        "occurred_at": T0 + timedelta(seconds=n),
    }
    values.update(overrides)
    return AuditEntry(**values)


def _append_committed(db: Database, count: int, *, start: int = 0) -> None:
    """Append ``count`` events, each in its own committed transaction (as requests do)."""
    for n in range(start, start + count):
        with db.session() as session:
            append(session, _make_entry(n))
            session.commit()


# Helpers are handed out as fixtures so that no test module imports this conftest by name.
@pytest.fixture
def make_entry() -> Callable[..., AuditEntry]:
    return _make_entry


@pytest.fixture
def append_committed() -> Callable[..., None]:
    return _append_committed
