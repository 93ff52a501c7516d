"""Every wait for the database is bounded, and one that runs out is a 503 that wrote nothing.

The database is held busy from outside the application (another connection keeping the
audit chain's lock on PostgreSQL, or SQLite's write lock), with the waits configured short;
the intake must answer 503 with ``Retry-After`` within about that time, store nothing, and
succeed once the database is free again. Incidents are invented test data.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text

from app.audit.chain import AUDIT_CHAIN_LOCK_KEY
from app.config import Settings
from app.db import Database, DatabaseBusy
from tests.conftest import build_app, example_incident

WAIT_MS = 300

# The waits are bounded in wall time: measured with the machine to itself.
pytestmark = pytest.mark.exclusive


@contextmanager
def database_held(database: Database) -> Iterator[None]:
    """Hold what every write needs last: the chain lock (PostgreSQL), the write lock (SQLite)."""
    if database.sqlite:
        conn = sqlite3.connect(database.url.removeprefix("sqlite:///"), isolation_level=None)
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            conn.execute("ROLLBACK")
            conn.close()
        return
    engine = create_engine(database.url)
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": AUDIT_CHAIN_LOCK_KEY})
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": AUDIT_CHAIN_LOCK_KEY})
    engine.dispose()


def incidents(database: Database) -> int:
    with database.session() as s:
        return int(s.execute(text("SELECT count(*) FROM incidents")).scalar_one())


def test_a_busy_database_is_a_quick_503_that_writes_nothing(
    fresh_database: Database, make_key_fresh: Any
) -> None:
    settings = Settings(
        environment="test",
        database_url=fresh_database.url,
        db_lock_timeout_ms=WAIT_MS,
        sqlite_busy_timeout_ms=WAIT_MS,
    )
    database = Database(fresh_database.url, limits=settings.database_limits)
    app = build_app(settings, database, None)
    headers = make_key_fresh(fresh_database)
    with TestClient(app) as client:
        warm = example_incident()
        warm["source"]["reference"] = "WAITS-warm"
        assert client.post("/v1/incidents", json=warm, headers=headers).status_code == 201
        before = incidents(fresh_database)
        with database_held(fresh_database):
            started = time.monotonic()
            r = client.post("/v1/incidents", json=example_incident(), headers=headers)
            took = time.monotonic() - started
        assert r.status_code == 503, r.text
        assert r.headers["retry-after"] == str(settings.retry_after_seconds)
        assert r.headers["content-type"] == "application/problem+json"
        assert "nothing was saved" in r.json()["detail"]
        assert took < 5, took
        assert incidents(fresh_database) == before
        # Free again: the same request now succeeds, once.
        assert (
            client.post("/v1/incidents", json=example_incident(), headers=headers).status_code
            == 201
        )
        assert (
            client.post("/v1/incidents", json=example_incident(), headers=headers).status_code
            == 200
        )
    assert incidents(fresh_database) == before + 1
    database.dispose()


def test_sqlite_writers_of_one_process_take_turns_with_a_bounded_wait(tmp_path: Any) -> None:
    url = f"sqlite:///{tmp_path / 'turns.db'}"
    database = Database(
        url, limits=Settings(database_url=url, sqlite_busy_timeout_ms=WAIT_MS).database_limits
    )
    with database.engine.connect() as conn:
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
        conn.commit()
    with database.unit() as session:
        session.execute(text("INSERT INTO t VALUES (1)"))
        # Another writer of this process waits its turn for at most the busy timeout...
        started = time.monotonic()
        with pytest.raises(DatabaseBusy), database.unit() as other:
            other.execute(text("INSERT INTO t VALUES (2)"))
        assert WAIT_MS / 1000 * 0.8 < time.monotonic() - started < 3
    # ...and a reader does not queue behind writers at all.
    with database.unit() as session:
        session.execute(text("INSERT INTO t VALUES (3)"))
        with database.unit(read_only=True) as reader:
            assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
    database.dispose()
