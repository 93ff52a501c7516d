"""SQL for what-if: the latest assessment of each incident in scope, what re-scoring needs.

Per row (:data:`app.reports.whatif.Row`): the instrument, then

- for an assessment whose stored result is the current result (``StoredKeys``: it names
  the area's current definitions by sha256, was made by this engine version and the
  classifier did not raise its level), the stored victim level and the count of children
  at each level, and its stored inputs only if the draft can change it
  (:func:`app.reports.whatif.victim_unchanged` decides from them);
- for every other, its stored ``inputs`` as JSON text (``CAST … AS TEXT``), for the
  workers to parse, so the process reading the rows never builds Python objects from them.

All of the first kind comes from columns written with the assessment
(``app.assessments.facts``): the stored ``result`` (some 12 KB of JSON, compressed out of
line on PostgreSQL) is never read; decompressing it costs about as much as the rest of
the row. Whether a row is of the first kind is computed once per row in a subquery
(``OFFSET 0`` keeps PostgreSQL from inlining it into each column). On PostgreSQL the rows
come through a server-side cursor, a batch at a time, so a million incidents are never in
memory at once.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    Text,
    and_,
    case,
    cast,
    false,
    func,
    null,
    or_,
    select,
    true,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased

from app.assessments.facts import CHILD_LEVEL_COLUMNS
from app.assessments.models import Assessment
from app.contract.levels import CHILD_LEVELS
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


def _stored_usable(keys: StoredKeys) -> ColumnElement[bool]:
    """The stored result is the current result: it names the area's current definitions by
    sha256, was made by this engine version and the classifier did not raise the victim's
    level (columns written with the assessment, ``app.assessments.facts.result_facts``;
    the JSON is never read to decide)."""
    a = Assessment
    return and_(
        a.child_checklist_sha256 == keys.child_risk,
        or_(
            *(
                and_(a.victim_checklist_id == i, a.victim_checklist_sha256 == s)
                for i, s in sorted(keys.victim_checklists.items())
            )
        ),
        a.engine_version == keys.engine_version,
        or_(a.classifier_sha256.is_(None), a.classifier_raised.is_(False)),
    )


def _unchanged_by_draft(keys: StoredKeys) -> ColumnElement[bool]:
    """The draft cannot change this assessment's result: its instrument is not the draft's,
    or the draft moves only score thresholds and its score is not one they change."""
    a = Assessment
    return or_(
        a.victim_checklist_id.in_(sorted(keys.untouched)) if keys.untouched else false(),
        *(
            and_(
                a.victim_checklist_id == instrument,
                a.victim_score.is_not(None),
                a.victim_score.not_in(sorted(scores)) if scores else true(),
            )
            for instrument, scores in sorted(keys.affected_scores.items())
        ),
    )


def _children_counts() -> list[ColumnElement[Any]]:
    """The children assessed at each level (``CHILD_LEVELS`` order), from the columns."""
    return [getattr(Assessment, column) for column in CHILD_LEVEL_COLUMNS]


def _with_stored(scope: Scope, keys: StoredKeys) -> Select[Any]:
    """Whether the stored result is the current result is computed once per row (``OFFSET
    0`` keeps PostgreSQL from inlining the subquery into each column that uses it)."""
    counts = _children_counts()
    checked = (
        _latest(
            scope,
            Assessment.victim_checklist_id.label("instrument"),
            Assessment.victim_level.label("level"),
            Assessment.inputs.label("inputs"),
            *(c.label(f"c{n}") for n, c in enumerate(counts)),
            _unchanged_by_draft(keys).label("untouched"),
            _stored_usable(keys).label("usable"),
        )
        .offset(0)
        .subquery()
    )
    usable = checked.c.usable
    return select(
        checked.c.instrument,
        case((usable, checked.c.level), else_=null()),
        *(case((usable, checked.c[f"c{n}"]), else_=null()) for n in range(len(counts))),
        case((and_(usable, checked.c.untouched), null()), else_=cast(checked.c.inputs, Text)),
    )


def stream_rows(
    connection: Connection, scope: Scope, batch_size: int, keys: StoredKeys | None
) -> Iterator[list[Row]]:
    """The latest assessment of each incident in scope as :data:`app.reports.whatif.Row`
    tuples, in batches of ``batch_size`` (a server-side cursor on PostgreSQL). Where
    ``keys`` say the stored result is the current result, the row carries its stored levels
    (and, for an instrument the draft cannot change, no inputs); none when ``keys`` is
    None."""
    if keys is None or not keys.victim_checklists:
        nothing = [null() for _ in CHILD_LEVELS]
        query = _latest(
            scope, Assessment.victim_checklist_id, null(), *nothing, cast(Assessment.inputs, Text)
        )
    else:
        query = _with_stored(scope, keys)
    # On the statement, not the connection: a connection's options would stay set for the
    # caller's later statements (a server-side cursor for an INSERT fails).
    result = connection.execute(query.execution_options(yield_per=batch_size))
    last = 2 + len(CHILD_LEVELS)
    for partition in result.partitions():
        yield [(r[0], r[1], None if r[1] is None else tuple(r[2:last]), r[last]) for r in partition]
