"""SQL for what-if: the latest assessment of each incident in scope, its stored inputs only.

Only the ``inputs`` column is read, as JSON text (``CAST … AS TEXT``): the workers parse it
with orjson, so the process reading the rows never builds Python objects from it. On
PostgreSQL the rows come through a server-side cursor, a batch at a time, so a million
incidents are never in memory at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, Text, cast, func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased

from app.assessments.models import Assessment
from app.incidents.models import Incident


@dataclass(frozen=True)
class Scope:
    """Incidents of one area, optionally by when they occurred (``from`` ≤ t < ``to``)."""

    area: str
    occurred_from: dt.datetime | None = None
    occurred_to: dt.datetime | None = None


def _latest(scope: Scope) -> Select[Any]:
    newer = aliased(Assessment)
    latest_version = (
        select(func.max(newer.version))
        .where(newer.incident_id == Assessment.incident_id)
        .scalar_subquery()
    )
    query = (
        select(cast(Assessment.inputs, Text))
        .join(Incident, Incident.id == Assessment.incident_id)
        .where(
            Incident.area == scope.area,
            Incident.erased_at.is_(None),
            Assessment.inputs.is_not(None),
            Assessment.version == latest_version,
        )
    )
    if scope.occurred_from is not None:
        query = query.where(Incident.occurred_at >= scope.occurred_from)
    if scope.occurred_to is not None:
        query = query.where(Incident.occurred_at < scope.occurred_to)
    return query


def count_in_scope(session: Session | Connection, scope: Scope) -> int:
    """How many incidents a what-if over ``scope`` would re-score."""
    query = select(func.count()).select_from(_latest(scope).subquery())
    return int(session.execute(query).scalar_one())


def stream_inputs(connection: Connection, scope: Scope, batch_size: int) -> Iterator[list[str]]:
    """The stored inputs of the latest assessment of each incident in scope, as JSON
    text, in batches of ``batch_size`` (a server-side cursor on PostgreSQL)."""
    # On the statement, not the connection: a connection's options would stay set for the
    # caller's later statements (a server-side cursor for an INSERT fails).
    result = connection.execute(_latest(scope).execution_options(yield_per=batch_size))
    for partition in result.partitions():
        yield [str(row[0]) for row in partition]
