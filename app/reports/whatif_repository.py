"""SQL for what-if: the latest assessment of each incident in scope, what re-scoring needs.

Per row: the victim checklist id and sha256 and the child-risk sha256 the assessment was
made with, its stored ``inputs`` as JSON text and, only where those hashes are the area's
current ones (``StoredKeys``), its stored ``result`` as JSON text (otherwise NULL, so the
server neither reads nor sends it). Both are read as text (``CAST … AS TEXT``): the
workers parse them, so the process reading the rows never builds Python objects from
them. On PostgreSQL the rows come through a server-side cursor, a batch at a time, so a
million incidents are never in memory at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, Text, and_, case, cast, false, func, null, or_, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased

from app.assessments.models import Assessment
from app.incidents.models import Incident
from app.reports.whatif import Row, StoredKeys


@dataclass(frozen=True)
class Scope:
    """Incidents of one area, optionally by when they occurred (``from`` ≤ t < ``to``)."""

    area: str
    occurred_from: dt.datetime | None = None
    occurred_to: dt.datetime | None = None


def _latest(scope: Scope, *columns: Any) -> Select[Any]:
    newer = aliased(Assessment)
    latest_version = (
        select(func.max(newer.version))
        .where(newer.incident_id == Assessment.incident_id)
        .scalar_subquery()
    )
    query = (
        select(*columns)
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
    query = select(func.count()).select_from(_latest(scope, Assessment.id).subquery())
    return int(session.execute(query).scalar_one())


def _stored_matches(keys: StoredKeys | None) -> ColumnElement[bool]:
    if keys is None or not keys.victim_checklists:
        return false()
    return and_(
        Assessment.child_checklist_sha256 == keys.child_risk,
        or_(
            *(
                and_(Assessment.victim_checklist_id == i, Assessment.victim_checklist_sha256 == s)
                for i, s in sorted(keys.victim_checklists.items())
            )
        ),
    )


def stream_rows(
    connection: Connection, scope: Scope, batch_size: int, keys: StoredKeys | None
) -> Iterator[list[Row]]:
    """The latest assessment of each incident in scope as :data:`app.reports.whatif.Row`
    tuples, in batches of ``batch_size`` (a server-side cursor on PostgreSQL); the stored
    result only where ``keys`` match (none when ``keys`` is None)."""
    query = _latest(
        scope,
        Assessment.victim_checklist_id,
        Assessment.victim_checklist_sha256,
        Assessment.child_checklist_sha256,
        cast(Assessment.inputs, Text),
        case((_stored_matches(keys), cast(Assessment.result, Text)), else_=null()),
    )
    # On the statement, not the connection: a connection's options would stay set for the
    # caller's later statements (a server-side cursor for an INSERT fails).
    result = connection.execute(query.execution_options(yield_per=batch_size))
    for partition in result.partitions():
        yield [(r[0], r[1], r[2], r[3], r[4]) for r in partition]
