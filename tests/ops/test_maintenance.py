"""SQLite's planner statistics: refreshed by the maintenance round, never waited for.

SQLite only (PostgreSQL's autovacuum keeps its own statistics), so these tests make their
own SQLite database rather than running on both backends.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text
from structlog.testing import capture_logs

from app.db import Database, DatabaseLimits
from app.ops.maintenance import Maintenance
from tests.conftest import TempDatabase

LIMITS = DatabaseLimits(sqlite_busy_timeout_ms=5_000)


@pytest.fixture
def sqlite_database(tmp_path: Path) -> Iterator[Database]:
    database = Database(TempDatabase("sqlite", tmp_path).url, limits=LIMITS)
    yield database
    database.dispose()


def has_statistics(database: Database) -> bool:
    with database.unit(read_only=True) as session:
        return bool(
            session.execute(
                text("SELECT count(*) FROM sqlite_master WHERE name = 'sqlite_stat1'")
            ).scalar_one()
        )


def busy_timeout(database: Database) -> int:
    with database.engine.connect() as conn:
        return int(conn.execute(text("PRAGMA busy_timeout")).scalar_one())


def test_a_round_refreshes_statistics_once_per_period(sqlite_database: Database) -> None:
    maintenance = Maintenance(sqlite_database, interval=60)
    assert not has_statistics(sqlite_database)
    maintenance.run_once(wait=False)
    assert has_statistics(sqlite_database)
    first = maintenance._analyzed_at
    maintenance.run_once(wait=False)
    assert maintenance._analyzed_at == first  # not again before ten minutes


def test_a_busy_database_is_not_waited_for(sqlite_database: Database) -> None:
    path = sqlite_database.engine.url.database
    assert path is not None
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # another process holds the write lock
        with capture_logs() as logs:
            Maintenance(sqlite_database, interval=60).run_once(wait=False)
        # An expected, harmless outcome: said as such, not as a failed round.
        assert [e["event"] for e in logs] == ["statistics_not_refreshed_database_busy"]
        assert not has_statistics(sqlite_database)
    finally:
        writer.execute("ROLLBACK")
        writer.close()
    # The connection it borrowed went back to the pool with the usual timeout.
    assert busy_timeout(sqlite_database) == LIMITS.sqlite_busy_timeout_ms
    Maintenance(sqlite_database, interval=60).run_once(wait=False)
    assert has_statistics(sqlite_database)
