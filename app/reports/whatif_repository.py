"""SQL for what-if: the latest assessment of each incident in scope, what re-scoring needs.

Per row (:data:`app.reports.whatif.Row`): the instrument, then

- for an assessment whose stored result is the current result (``StoredKeys``: it names
  the area's current definitions by sha256, was made by this engine version and the
  classifier did not raise its level), the stored victim level (a column) and the
  children's levels (one JSON path into ``result``), and its stored inputs only if the
  draft can change it (:func:`app.reports.whatif.victim_unchanged` decides from them);
- for every other, its stored ``inputs`` as JSON text (``CAST … AS TEXT``), for the
  workers to parse, so the process reading the rows never builds Python objects from them.

The whole result (some 12 KB of JSON per assessment) is never sent: parsing it costs about
as much as scoring the inputs again. The condition is computed once per row in a subquery
(``OFFSET 0`` keeps PostgreSQL from inlining it into each column), cheapest tests first,
so ``result`` is only read for rows whose hashes match. On PostgreSQL the rows come
through a server-side cursor, a batch at a time, so a million incidents are never in
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
    literal_column,
    not_,
    null,
    or_,
    select,
    text,
    type_coerce,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session, aliased

from app.assessments.models import Assessment
from app.db import PortableJSON
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


def _same_definitions(keys: StoredKeys) -> ColumnElement[bool]:
    """The columns' half of "the stored result is the current result": it names the area's
    current definitions by sha256 (cheap tests, before any JSON is read)."""
    a = Assessment
    return and_(
        a.child_checklist_sha256 == keys.child_risk,
        or_(
            *(
                and_(a.victim_checklist_id == i, a.victim_checklist_sha256 == s)
                for i, s in sorted(keys.victim_checklists.items())
            )
        ),
        a.result.is_not(None),
    )


def _result_once(dialect: str) -> Any:
    """The stored result, to be read by several JSON operators. On PostgreSQL an in-memory
    copy (``|| '{}'``): the column is stored out of line (TOAST, compressed), and each
    operator applied to the column itself would fetch and decompress it again."""
    if dialect == "postgresql":
        return type_coerce(Assessment.result.op("||")(literal_column("'{}'::jsonb")), PortableJSON)
    return Assessment.result


def _result_usable(
    result: Any, classifier: Any, keys: StoredKeys, dialect: str
) -> ColumnElement[bool]:
    """The JSON half: made by this engine version, and the classifier did not raise the
    victim's level."""
    raised: ColumnElement[Any]
    if dialect == "postgresql":
        raised = func.jsonb_path_exists(
            result, text("""'$.victim.triggers[*] ? (@.stage == "classifier")'""")
        )
    else:  # SQLite: the same test with its JSON functions
        raised = (
            select(literal_column("1"))
            .select_from(func.json_each(result, "$.victim.triggers").table_valued("value"))
            .where(func.json_extract(literal_column("value"), "$.stage") == "classifier")
            .exists()
        )
    return and_(
        result.is_not(None),
        result["engine_version"].as_string() == keys.engine_version,
        or_(classifier.is_(None), not_(raised)),
    )


def _children_levels(result: Any, dialect: str) -> ColumnElement[Any]:
    if dialect == "postgresql":
        return cast(func.jsonb_path_query_array(result, text("'$.children[*].level'")), Text)
    return (
        select(func.json_group_array(func.json_extract(literal_column("value"), "$.level")))
        .select_from(func.json_each(result, "$.children").table_valued("value"))
        .scalar_subquery()
    )


def _with_stored(scope: Scope, keys: StoredKeys, dialect: str) -> Select[Any]:
    """Three steps, each computed once per row (``OFFSET 0`` keeps PostgreSQL from
    inlining a subquery into each column that uses it): the columns and, where they name
    the current definitions, the result read once; whether that result is the current
    result; what the row sends."""
    untouched: ColumnElement[bool] = (
        Assessment.victim_checklist_id.in_(sorted(keys.untouched)) if keys.untouched else false()
    )
    columns = (
        _latest(
            scope,
            Assessment.victim_checklist_id.label("instrument"),
            Assessment.victim_level.label("level"),
            Assessment.inputs.label("inputs"),
            Assessment.classifier_sha256.label("classifier"),
            untouched.label("untouched"),
            case((_same_definitions(keys), _result_once(dialect)), else_=null()).label("result"),
        )
        .offset(0)
        .subquery()
    )
    checked = (
        select(
            columns,
            _result_usable(columns.c.result, columns.c.classifier, keys, dialect).label("usable"),
        )
        .offset(0)
        .subquery()
    )
    usable = checked.c.usable
    return select(
        checked.c.instrument,
        case((usable, checked.c.level), else_=null()),
        case((usable, _children_levels(checked.c.result, dialect)), else_=null()),
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
    dialect = connection.dialect.name
    if keys is None or not keys.victim_checklists:
        query = _latest(
            scope, Assessment.victim_checklist_id, null(), null(), cast(Assessment.inputs, Text)
        )
    else:
        query = _with_stored(scope, keys, dialect)
    # On the statement, not the connection: a connection's options would stay set for the
    # caller's later statements (a server-side cursor for an INSERT fails).
    result = connection.execute(query.execution_options(yield_per=batch_size))
    for partition in result.partitions():
        yield [(r[0], r[1], r[2], r[3]) for r in partition]
