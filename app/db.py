"""Database plumbing: engine, one unit of work per request, and the declarative base.

Services and repositories receive a ``Session`` and never commit; the request's session
dependency commits when the handler succeeds and rolls back on any exception, so a
failure at any step leaves nothing half-written.

SQLite specifics (Python 3.11's sqlite3 opens transactions lazily, only before DML):
we take over transaction control with ``isolation_level=None`` and emit
``BEGIN IMMEDIATE`` ourselves, so every transaction holds the write lock from its first
statement. Every request that touches personal data also appends to the audit hash chain,
so every such transaction is a writer; taking the lock up front is what keeps the chain
from forking under concurrent requests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import JSON, DateTime, MetaData, create_engine, event
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import DeclarativeBase, Session, sessionmaker
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

# JSON everywhere, stored as JSONB on PostgreSQL.
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
        if value is None:
            return None
        if value.tzinfo is None:  # SQLite returns naive values
            return value.replace(tzinfo=UTC)
        return value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


def new_id() -> uuid.UUID:
    return uuid.uuid4()


def utcnow() -> datetime:
    return datetime.now(UTC)


def is_sqlite(engine_or_url: Engine | str) -> bool:
    url = engine_or_url if isinstance(engine_or_url, str) else str(engine_or_url.url)
    return url.startswith("sqlite")


def create_db_engine(url: str, *, echo: bool = False) -> Engine:
    """Create the engine with the pragmas and pool sizing this service relies on."""
    if is_sqlite(url):
        in_memory = url in ("sqlite://", "sqlite:///:memory:")
        pool_args: dict[str, Any] = (
            {} if in_memory else {"pool_size": 10, "max_overflow": 30, "pool_pre_ping": True}
        )
        engine = create_engine(
            url,
            echo=echo,
            connect_args={"check_same_thread": False, "timeout": 30},
            **pool_args,
        )
        _install_sqlite_hooks(engine)
        return engine
    return create_engine(
        url,
        echo=echo,
        # At least the size of AnyIO's default thread pool (40) so that a burst of
        # sync endpoints never waits for a connection.
        pool_size=10,
        max_overflow=30,
        pool_pre_ping=True,
    )


def _install_sqlite_hooks(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Take transaction control away from the sqlite3 module (see module docstring).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Any) -> None:
        # Probes that only read (readiness) opt out with
        # ``execution_options(sqlite_begin="DEFERRED")`` so they never queue for the lock.
        mode = conn.get_execution_options().get("sqlite_begin", "IMMEDIATE")
        conn.exec_driver_sql(f"BEGIN {mode}")


class Database:
    """The engine and session factory of one running application."""

    def __init__(self, url: str, *, echo: bool = False) -> None:
        self.url = url
        self.engine = create_db_engine(url, echo=echo)
        self.session_factory = sessionmaker(
            bind=self.engine, expire_on_commit=False, autoflush=True
        )

    def session(self) -> Session:
        return self.session_factory()

    def dispose(self) -> None:
        self.engine.dispose()


def get_database(request: Request) -> Database:
    db: Database = request.app.state.database
    return db


def get_session(request: Request) -> Iterator[Session]:
    """One unit of work per request: commit on success, roll back on any error.

    Registered with ``scope="function"`` so that the commit happens before the
    response is sent: a failed commit becomes an error response, never a 2xx.
    """
    session = get_database(request).session()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session, scope="function")]
