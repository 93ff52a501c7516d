"""Reading the audit log: the auditor's filters, shared by the HTTP listing and the CLI export.

``record`` and ``person`` filters go through the ``audit_event_records`` index table, so they
are index lookups on SQLite and PostgreSQL alike. Results are in chain order (``seq``) and
paged by keyset (``after_seq``), never by offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Engine, Select, create_engine, event, select
from sqlalchemy.orm import Session
from sqlalchemy.pool import NullPool

from app.audit.chain import event_as_json
from app.audit.models import AuditEvent, AuditEventRecord

_EVENTS = AuditEvent.__table__
_INDEX = AuditEventRecord.__table__


@dataclass(frozen=True, kw_only=True)
class EventFilter:
    """All given conditions must hold. ``occurred_from`` is inclusive, ``occurred_to`` exclusive."""

    record: str | None = None
    person: str | None = None
    principal_id: str | None = None
    operation: str | None = None
    occurred_from: datetime | None = None
    occurred_to: datetime | None = None

    def __post_init__(self) -> None:
        for bound in (self.occurred_from, self.occurred_to):
            if bound is not None and bound.tzinfo is None:
                raise ValueError("time bounds must be timezone-aware")


def _conditions(where: EventFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = []
    for kind, value in (("record", where.record), ("person", where.person)):
        if value is not None:
            conditions.append(
                _EVENTS.c.seq.in_(
                    select(_INDEX.c.event_seq).where(
                        _INDEX.c.record_id == value, _INDEX.c.kind == kind
                    )
                )
            )
    if where.principal_id is not None:
        conditions.append(_EVENTS.c.principal_id == where.principal_id)
    if where.operation is not None:
        conditions.append(_EVENTS.c.operation == where.operation)
    if where.occurred_from is not None:
        conditions.append(_EVENTS.c.occurred_at >= where.occurred_from)
    if where.occurred_to is not None:
        conditions.append(_EVENTS.c.occurred_at < where.occurred_to)
    return conditions


def select_events(
    where: EventFilter, *, after_seq: int = 0, limit: int | None = None
) -> Select[AuditEvent]:
    """ORM select of matching events with ``seq > after_seq``, in chain order."""
    query = (
        select(AuditEvent)
        .where(AuditEvent.seq > after_seq, *_conditions(where))
        .order_by(AuditEvent.seq)
    )
    return query if limit is None else query.limit(limit)


def list_events(
    session: Session, where: EventFilter, *, after_seq: int = 0, limit: int = 100
) -> list[AuditEvent]:
    """One page of matching events; pass the last ``seq`` as ``after_seq`` for the next."""
    return list(session.scalars(select_events(where, after_seq=after_seq, limit=limit)))


def iter_event_json(
    conn: Session | Connection,
    where: EventFilter,
    *,
    up_to_seq: int | None = None,
    batch_size: int = 1000,
) -> Iterator[dict[str, Any]]:
    """Every matching event (up to ``up_to_seq``) as ``event_as_json``, read in batches so
    that memory stays bounded, without loading ORM objects into a session."""
    after = 0
    while True:
        query = select(_EVENTS).where(_EVENTS.c.seq > after, *_conditions(where))
        if up_to_seq is not None:
            query = query.where(_EVENTS.c.seq <= up_to_seq)
        rows = conn.execute(query.order_by(_EVENTS.c.seq).limit(batch_size)).all()
        for row in rows:
            yield event_as_json(dict(row._mapping))
        if len(rows) < batch_size:
            return
        after = int(rows[-1].seq)


@contextmanager
def read_snapshot(engine: Engine) -> Iterator[Connection]:
    """A read-only connection on one consistent snapshot that never blocks appends.

    For long reads (``verify``, exports for inspection): the service's SQLite engine opens
    every transaction with ``BEGIN IMMEDIATE``, which would hold the write lock, and so stop
    every request, for the whole walk. Here SQLite gets a deferred read transaction (WAL
    readers do not block the writer) and PostgreSQL a read-only REPEATABLE READ transaction.
    """
    if engine.dialect.name == "sqlite":
        reader = create_engine(
            engine.url,
            poolclass=NullPool,
            connect_args={"check_same_thread": False, "timeout": 30},
        )
        event.listen(reader, "connect", _sqlite_reader_connect)
        event.listen(reader, "begin", _sqlite_reader_begin)
        try:
            with reader.connect() as conn:
                yield conn
        finally:
            reader.dispose()
    else:
        with engine.connect() as conn:
            conn = conn.execution_options(
                isolation_level="REPEATABLE READ", postgresql_readonly=True
            )
            yield conn


def _sqlite_reader_connect(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA query_only=ON")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.close()


def _sqlite_reader_begin(conn: Connection) -> None:
    conn.exec_driver_sql("BEGIN")  # deferred: a read snapshot from the first SELECT
