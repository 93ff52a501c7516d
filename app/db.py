"""Database plumbing: engine, the unit of work, and the declarative base.

**One unit of work, one thread.** Every request's database work runs inside
``Database.unit()``: a session whose transaction begins, commits (or rolls back) and
closes within the one synchronous call that uses it. Services and repositories receive the
session and never commit. Nothing that holds a connection or a lock ever waits for
something another request holds in return: a transaction never spans a hop to another
worker thread (FastAPI runs each sync dependency, each sync endpoint and the response
validation of a sync endpoint in separate worker-thread calls; a session opened in a
dependency and committed after the response validation held its connection and its locks
across three of them, and a burst that filled the thread pool with requests waiting on
those locks left the holder without a thread to commit in — see docs/architecture.md).

Every wait is bounded: PostgreSQL sessions run with ``lock_timeout``,
``statement_timeout`` and ``idle_in_transaction_session_timeout``; the pool's checkout
waits at most ``pool_timeout``; SQLite writers queue on a process-wide lock with a
timeout, then on SQLite's own ``busy_timeout``. A wait that runs out raises, and the
request is answered 503 with ``Retry-After`` (``app.errors``).

SQLite specifics (Python 3.11's sqlite3 opens transactions lazily, only before DML): we
take over transaction control with ``isolation_level=None`` and emit the ``BEGIN``
ourselves. A writing unit begins ``IMMEDIATE`` (it holds the write lock from its first
statement, so a read-then-write such as the audit chain's head never forks); a read-only
unit begins ``DEFERRED`` and never queues for the write lock. Writers in one process take
turns on a ``threading.Lock`` first: SQLite's busy handler polls with growing sleeps, which
is slow and unfair under contention, while a lock hands over at once.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import threading
import time
import uuid
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import orjson
from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, Insert, MetaData, Table, create_engine, event, insert, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.pool import StaticPool
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON everywhere, stored as JSONB on PostgreSQL (an assessment's inputs are json text: see
# app/assessments/models.py).
PortableJSON = JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware timestamps on both backends; SQLite stores them as UTC text."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, _dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetimes are not stored")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, _dialect: Any) -> datetime | None:
        if value is None or value.tzinfo is UTC:
            return value  # PostgreSQL's, in the UTC session time zone every connection has
        if value.tzinfo is None:  # SQLite returns naive values
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def table_of(model: type[Base]) -> Table:
    """The Core table of an ORM model, for batched inserts without the unit of work."""
    return cast(Table, model.__table__)


@functools.cache
def _insert_into(model: type[Base]) -> Insert:
    # Built once per table, so its compiled form and cache key are reused.
    return insert(table_of(model))


def insert_rows(session: Session, model: type[Base], rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert ``rows`` into ``model``'s table in one batched statement (insertmanyvalues),
    on the session's connection, without the ORM unit of work (no identity map, no
    per-object events). Repositories use it for the rows of a new incident."""
    if rows:
        session.connection().execute(_insert_into(model), list(rows))


def new_id() -> uuid.UUID:
    """A UUID version 7 (RFC 9562 §5.7): 48 bits of Unix time in milliseconds, then 74
    random bits.

    Every table's primary key and most of its indexes take new ids in time order, so an
    insert lands on the last page of each index instead of a random one: an intake on
    SQLite wrote some 220 pages of write-ahead log with random (version 4) ids. The 74
    random bits keep ids unguessable; the time in them is when the record was made, which
    the records show anyway.
    """
    value = (time.time_ns() // 1_000_000) << 80 | int.from_bytes(os.urandom(10), "big")
    value = value & ~(0xF << 76) | 0x7 << 76  # version 7
    value = value & ~(0x3 << 62) | 0x2 << 62  # variant 10 (RFC 9562)
    return uuid.UUID(int=value)


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


# Lock names are prefixed with this (person links: "da-triage:person-link:…", the same ids
# earlier releases used, so that replicas of two releases still exclude each other).
LOCK_NAMESPACE = b"da-triage:"


def lock_id(key: str) -> int:
    """The 64-bit advisory lock id of a lock name (stable across processes and versions)."""
    digest = hashlib.sha256(LOCK_NAMESPACE + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def lock_keys(session: Session, keys: Iterable[str]) -> None:
    """Take transaction-scoped advisory locks on ``keys`` (PostgreSQL), in one statement.

    Taken in sorted order, so two transactions never wait on each other in a cycle; held
    until commit or rollback. SQLite needs none: a writing unit holds the database's write
    lock from its first statement.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    ids = sorted({lock_id(k) for k in keys})
    if not ids:
        return
    session.execute(
        text(
            "SELECT pg_advisory_xact_lock(k) FROM "
            "(SELECT unnest(CAST(:ids AS bigint[])) AS k ORDER BY 1) AS ordered"
        ),
        {"ids": ids},
    )


class DatabaseBusy(Exception):
    """A bounded wait for the database ran out (a lock, the pool, SQLite's writer turn).

    Answered 503 with ``Retry-After``: the request changed nothing and may be retried.
    """


@dataclass(frozen=True)
class DatabaseLimits:
    """How long anything may wait for the database, and how many connections there are.

    The defaults suit commands and batch jobs (a long export or migration must not be cut
    off). The running service passes ``Settings.database_limits``: every wait bounded, and
    ``pool_size`` at least the number of requests admitted at once (each holds at most one
    connection) plus the probes and the audit sealer, with no overflow, so a connection is
    never opened in a hurry under load.
    """

    pool_size: int = 10
    pool_timeout_seconds: float = 30.0
    lock_timeout_ms: int | None = None
    statement_timeout_ms: int | None = None
    idle_in_transaction_timeout_ms: int | None = None
    sqlite_busy_timeout_ms: int = 30_000
    # The running service checkpoints SQLite's log in the background (app/ops/maintenance.py)
    # and leaves the automatic checkpoint as a safety net only; commands keep the default.
    sqlite_background_checkpoint: bool = False

    def postgresql_options(self) -> str:
        """The session settings every PostgreSQL connection starts with. The time zone is
        UTC whatever the server's default (often ``Etc/UTC`` or a local zone): psycopg then
        gives timestamps Python's own UTC, which :class:`UTCDateTime` passes through, where
        a named zone cost a time-zone conversion in the driver and another in
        ``UTCDateTime`` for every timestamp read (some 17 % of the largest area report's
        CPU, bench/report_bench.py). No statement of the service depends on the session
        time zone: local dates are worked out in Python (Europe/London)."""
        settings = {
            "TimeZone": "UTC",
            "lock_timeout": self.lock_timeout_ms,
            "statement_timeout": self.statement_timeout_ms,
            "idle_in_transaction_session_timeout": self.idle_in_transaction_timeout_ms,
        }
        return " ".join(f"-c {name}={value}" for name, value in settings.items() if value)


def json_dumps(value: Any) -> str:
    """How JSON columns are written: orjson (several times faster than ``json``), falling
    back to ``json`` for what orjson refuses (integers beyond 64 bits)."""
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return json.dumps(value)


def create_db_engine(
    url: str, *, echo: bool = False, limits: DatabaseLimits | None = None
) -> Engine:
    """Create the engine with the pragmas, pool sizing and timeouts this service relies on."""
    limits = limits or DatabaseLimits()
    if is_sqlite(url):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        pool_args: dict[str, Any] = (
            {"poolclass": StaticPool}
            if in_memory
            else {
                "pool_size": limits.pool_size,
                "max_overflow": 0,
                "pool_timeout": limits.pool_timeout_seconds,
                "pool_pre_ping": True,
            }
        )
        engine = create_engine(
            url,
            echo=echo,
            json_serializer=json_dumps,
            connect_args={
                "check_same_thread": False,
                "timeout": limits.sqlite_busy_timeout_ms / 1000,
            },
            **pool_args,
        )
        _install_sqlite_hooks(engine, limits)
        return engine
    options = limits.postgresql_options()
    return create_engine(
        url,
        echo=echo,
        json_serializer=json_dumps,
        pool_size=limits.pool_size,
        max_overflow=0,
        pool_timeout=limits.pool_timeout_seconds,
        pool_pre_ping=True,
        connect_args={"options": options},
    )


# With background checkpoints, a commit checkpoints only if the log has grown past this
# many pages (40 MB) anyway: the background thread has stopped or cannot keep up.
SAFETY_NET_CHECKPOINT_PAGES = 10_000


def _install_sqlite_hooks(engine: Engine, limits: DatabaseLimits) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute(f"PRAGMA busy_timeout={int(limits.sqlite_busy_timeout_ms)}")
        if limits.sqlite_background_checkpoint:
            cursor.execute(f"PRAGMA wal_autocheckpoint={SAFETY_NET_CHECKPOINT_PAGES}")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Read-only units (and probes) opt out with
        # ``execution_options(sqlite_begin="DEFERRED")`` so they never queue for the lock.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The engine and the units of work of one running application."""

    def __init__(
        self, url: str, *, echo: bool = False, limits: DatabaseLimits | None = None
    ) -> None:
        self.url = url
        self.limits = limits or DatabaseLimits()
        self.engine = create_db_engine(url, echo=echo, limits=self.limits)
        self.sqlite = is_sqlite(url)
        self._savepoints = False
        self._writer = threading.Lock()
        self.session_factory = sessionmaker(
            bind=self.engine, expire_on_commit=False, autoflush=True
        )
        self._read_only_factory = sessionmaker(
            bind=self.engine.execution_options(sqlite_begin="DEFERRED"),
            expire_on_commit=False,
            autoflush=True,
        )

    @classmethod
    def joined(cls, database: Database, connection: Connection) -> Database:
        """The same database whose units join ``connection``'s transaction as savepoints.

        For tests: each test runs in an outer transaction that is rolled back at the end,
        and the app's "commits" only release savepoints.
        """
        joined = cls.__new__(cls)
        joined.url = database.url
        joined.limits = database.limits
        joined.engine = database.engine
        joined.sqlite = database.sqlite
        joined._savepoints = True
        joined._writer = threading.Lock()
        joined.session_factory = sessionmaker(
            bind=connection,
            expire_on_commit=False,
            autoflush=True,
            join_transaction_mode="create_savepoint",
        )
        joined._read_only_factory = joined.session_factory
        return joined

    def session(self) -> Session:
        """A plain session (CLI, tests, background jobs): the caller commits."""
        return self.session_factory()

    @contextmanager
    def unit(self, *, read_only: bool = False) -> Iterator[Session]:
        """One transaction: committed when the block ends, rolled back if it raises.

        Begin, commit or rollback, and close all happen in the calling thread, so the
        transaction's locks and connection are never held while waiting for another
        worker thread. ``read_only`` units must not write (on SQLite they begin DEFERRED
        and skip the writers' turn).
        """
        queued = self.sqlite and not read_only and not self._savepoints
        if queued and not self._writer.acquire(timeout=self.limits.sqlite_busy_timeout_ms / 1000):
            raise DatabaseBusy("timed out waiting for the SQLite writer's turn")
        try:
            session = self._new_session(read_only)
            try:
                yield session
                session.commit()
            except BaseException:
                session.rollback()
                raise
            finally:
                session.close()
        finally:
            if queued:
                self._writer.release()

    def _new_session(self, read_only: bool) -> Session:
        return self._read_only_factory() if read_only else self.session_factory()

    def dispose(self) -> None:
        if not self._savepoints:
            self.engine.dispose()


async def get_database(request: Request) -> Database:
    """The application's database (tests override this dependency)."""
    db: Database = request.app.state.database
    return db


DatabaseDep = Annotated[Database, Depends(get_database)]
