"""The queries behind the area reports: rows of one area and period, never whole records.

Each query is bounded by an index on the area and a time (incidents by ``occurred_at``
and by ``review_due_at``, flags by ``created_at``) and returns only the columns and JSON
members a figure needs; counting happens in :mod:`app.reports.area`. Erased incidents
(retention) are left out of every figure but the reviews.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, func, select, union_all
from sqlalchemy.orm import Session, aliased

from app.assessments.models import Assessment
from app.flags.models import Flag, FlagEvent
from app.incidents.models import Incident, IncidentPerson, Person

# A flag's first action: the first change a person working flags made to it (a status,
# an assignee, a note), not the service's own events (raising, re-assessment).
WORKING_ROLES = ("triage", "agency")


@dataclass(frozen=True)
class IncidentFacts:
    """One incident of the period as its latest assessment scored it."""

    id: uuid.UUID
    occurred_at: dt.datetime
    victim_level: str
    marac_refer: bool
    marac_criteria: list[str]
    serial_perpetrator: bool
    child_levels: list[str]
    children: list[dict[str, Any]]  # each child's facts as scored (present, witnessed...)
    separation_status: str | None
    separation_past_year: str | None  # the DASH answer


@dataclass(frozen=True)
class Occurrence:
    """An incident a person (resolved through merges to ``who``) had in one role."""

    who: uuid.UUID
    incident_id: uuid.UUID
    occurred_at: dt.datetime


@dataclass(frozen=True)
class FlagFacts:
    agency: str
    status: str
    due_at: dt.datetime
    created_at: dt.datetime
    first_action_at: dt.datetime | None


@dataclass(frozen=True)
class ReviewFacts:
    review_due_at: dt.datetime
    erased_at: dt.datetime | None


def _in_period(area: str, start: dt.datetime, end: dt.datetime) -> Any:
    return (
        (Incident.area == area)
        & (Incident.occurred_at >= start)
        & (Incident.occurred_at < end)
        & Incident.erased_at.is_(None)
    )


def incident_facts(
    session: Session, area: str, start: dt.datetime, end: dt.datetime
) -> list[IncidentFacts]:
    """The area's incidents that occurred in [start, end), each with its latest assessment."""
    later = aliased(Assessment)
    latest = (
        select(func.max(later.version)).where(later.incident_id == Incident.id).scalar_subquery()
    )
    in_period = (
        select(Incident.id, Incident.occurred_at, Assessment.victim_level, Assessment.marac_refer)
        .join(Assessment, Assessment.incident_id == Incident.id)
        .where(_in_period(area, start, end), Assessment.version == latest)
    )
    if session.get_bind().dialect.name == "postgresql":
        return _incident_facts_postgres(session, in_period)
    incident = Assessment.inputs["incident"]
    query = in_period.add_columns(
        Assessment.result["victim"]["marac"]["criteria"],
        Assessment.result["perpetrator"]["serial"],
        Assessment.result["children"],
        incident["persons"],
        incident["relationship"]["separation"]["status"].as_string(),
        incident["victim_checklist"]["answers"]["separation_past_year"].as_string(),
    )
    return [
        _facts(
            row,
            child_levels=[c["level"] for c in row[6] or []],
            children=[p.get("child") or {} for p in row[7] or [] if p.get("role") == "child"],
        )
        for row in session.execute(query)
    ]


def _facts(row: Any, *, child_levels: list[str], children: list[dict[str, Any]]) -> IncidentFacts:
    """A row of either backend's facts query (columns in the same order); the children's
    levels and facts come from the row in each backend's own shape."""
    return IncidentFacts(
        id=row[0],
        occurred_at=row[1],
        victim_level=row[2],
        marac_refer=bool(row[3]),
        marac_criteria=list(row[4] or []),
        serial_perpetrator=row[5] is True,
        child_levels=child_levels,
        children=children,
        separation_status=row[8],
        separation_past_year=row[9],
    )


# PostgreSQL: an assessment's JSON is stored out of line (TOAST, some 20 kB a row), and
# every operator applied to the column would fetch and decompress it again. A lateral
# subquery decompresses ``result`` and ``inputs`` once per row (``|| '{}'`` makes an
# in-memory copy; ``OFFSET 0`` keeps the subquery from being folded into the outer query),
# and JSON paths keep only what is counted: the children's levels and their facts.
_FACTS_POSTGRES = """
SELECT p.id, p.occurred_at, p.victim_level, p.marac_refer,
       j.r -> 'victim' -> 'marac' -> 'criteria',
       j.r -> 'perpetrator' -> 'serial',
       jsonb_path_query_array(j.r, '$.children[*].level'),
       jsonb_path_query_array(j.i, '$.incident.persons[*] ? (@.role == "child").child'),
       j.i -> 'incident' -> 'relationship' -> 'separation' ->> 'status',
       j.i -> 'incident' -> 'victim_checklist' -> 'answers' ->> 'separation_past_year'
FROM ({period}) AS p
JOIN assessments AS a ON a.id = p.assessment_id
CROSS JOIN LATERAL (SELECT a.result || '{{}}'::jsonb AS r, a.inputs || '{{}}'::jsonb AS i
                    OFFSET 0) AS j
"""


def _incident_facts_postgres(session: Session, in_period: Any) -> list[IncidentFacts]:
    period = in_period.add_columns(Assessment.id.label("assessment_id"))
    compiled = period.compile(session.get_bind())
    sql = _FACTS_POSTGRES.format(period=compiled.string)
    rows = session.connection().exec_driver_sql(sql, compiled.params)
    return [
        _facts(
            row,
            child_levels=[level for level in row[6] or [] if isinstance(level, str)],
            children=[c for c in row[7] or [] if isinstance(c, dict)],
        )
        for row in rows
    ]


def _resolved(person: type[Person]) -> Any:
    return func.coalesce(person.merged_into_id, person.id)


def occurrences(
    session: Session,
    area: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    role: str,
    since: dt.datetime,
) -> tuple[list[Occurrence], list[Occurrence]]:
    """The period's incidents with the person in ``role`` (resolved through merges), and
    every incident (any area) since ``since`` that one of those persons had in that role."""
    person = aliased(Person)
    period: Select[Any] = (
        select(_resolved(person).label("who"), Incident.id, Incident.occurred_at)
        .join(IncidentPerson, IncidentPerson.incident_id == Incident.id)
        .join(person, person.id == IncidentPerson.person_id)
        .where(_in_period(area, start, end), IncidentPerson.role == role)
    )
    # The period's persons, once (a CTE read by both branches below).
    whos = period.with_only_columns(_resolved(person).label("who")).cte("whos")
    # Their records: each survivor and the records merged into it, with the survivor.
    # Two branches, each on its own index (the primary key, ``merged_into_id``): one
    # ``OR`` of the two would read every person (bench/report_bench.py).
    member = aliased(Person)
    records = union_all(
        select(member.id, _resolved(member).label("who")).where(member.id.in_(select(whos.c.who))),
        select(member.id, _resolved(member).label("who")).where(
            member.merged_into_id.in_(select(whos.c.who)),
            member.id.not_in(select(whos.c.who)),
        ),
    ).subquery()
    linked = aliased(IncidentPerson)
    earlier = aliased(Incident)
    history = (
        select(records.c.who, earlier.id, earlier.occurred_at)
        .select_from(records)
        .join(linked, (linked.person_id == records.c.id) & (linked.role == role))
        .join(earlier, earlier.id == linked.incident_id)
        .where(
            earlier.occurred_at >= since,
            earlier.occurred_at < end,
            earlier.erased_at.is_(None),
        )
    )
    return (
        [Occurrence(*row) for row in session.execute(period)],
        [Occurrence(*row) for row in session.execute(history)],
    )


def flag_facts(
    session: Session, area: str, start: dt.datetime, end: dt.datetime
) -> list[FlagFacts]:
    """The flags raised in the area in [start, end), with each one's first action."""
    first_action = (
        select(func.min(FlagEvent.at))
        .where(FlagEvent.flag_id == Flag.id, FlagEvent.role.in_(WORKING_ROLES))
        .scalar_subquery()
    )
    query = select(Flag.agency, Flag.status, Flag.due_at, Flag.created_at, first_action).where(
        Flag.area == area, Flag.created_at >= start, Flag.created_at < end
    )
    return [FlagFacts(*row) for row in session.execute(query)]


def review_facts(
    session: Session, area: str, start: dt.datetime, end: dt.datetime
) -> list[ReviewFacts]:
    """The area's incidents whose retention review fell due in [start, end)."""
    query = select(Incident.review_due_at, Incident.erased_at).where(
        Incident.area == area,
        Incident.review_due_at >= start,
        Incident.review_due_at < end,
    )
    return [ReviewFacts(due, erased) for due, erased in session.execute(query) if due is not None]
