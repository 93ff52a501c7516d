"""The queries behind the area reports: rows of one area and period, never whole records.

Each query is bounded by an index on the area and a time (incidents by ``occurred_at``
and by ``review_due_at``, flags by ``created_at``) and returns only the columns a figure
needs (an assessment's report facts are columns of their own, never its JSON); counting
happens in :mod:`app.reports.area`. Erased incidents (retention) are left out of every
figure but the reviews.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, text, union_all
from sqlalchemy.orm import Session, aliased

from app.assessments.facts import CHILD_FACTS, CHILD_LEVEL_COLUMNS
from app.assessments.models import Assessment
from app.contract.levels import CHILD_LEVELS
from app.flags.models import Flag, FlagEvent
from app.incidents.models import Incident, IncidentPerson, Person

# A flag's first action: the first change a person working flags made to it (a status,
# an assignee, a note), not the service's own events (raising, re-assessment).
WORKING_ROLES = ("triage", "agency")
# What the children of an incident went through, as counted (docs/reports.md).
CHILD_COUNTS = (*CHILD_FACTS, "not_spoken_to")


@dataclass(frozen=True)
class IncidentFacts:
    """One incident of the period as its latest assessment scored it (the assessment's
    report facts, app/assessments/facts.py)."""

    id: uuid.UUID
    occurred_at: dt.datetime
    victim_level: str
    marac_refer: bool
    marac_repeat: bool
    serial_perpetrator: bool
    child_levels: dict[str, int]  # children by their level
    children: dict[str, int]  # children present, witnessed, injured, intervened, not spoken to
    separation_related: bool


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


def _rows(session: Session, query: Any) -> Sequence[Any]:
    """The rows of a column query, read at the Core level (``Connection.execute``) and all
    at once (``all``: the driver's ``fetchall``). The ORM's result processing, which these
    plain columns do not need, and fetching row by row (the driver's ``fetchone`` for each
    of some 45,000 rows) took most of the largest area's report outside the database
    (bench/report_bench.py, profiled with py-spy)."""
    return session.connection().execute(query).all()


def begin_report(session: Session) -> None:
    """Settings for the report's transaction. PostgreSQL: no JIT compilation. The report's
    statements are many index lookups whose estimated cost passes ``jit_above_cost`` for a
    large area, and compiling them took longer than it saved (some 70 ms a statement at
    1,000,000 incidents, bench/report_bench.py)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SET LOCAL jit = off"))


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
    """The area's incidents that occurred in [start, end), each with its latest assessment's
    report facts: columns of the assessment, never its JSON."""
    later = aliased(Assessment)
    latest = (
        select(func.max(later.version)).where(later.incident_id == Incident.id).scalar_subquery()
    )
    query = (
        select(
            Incident.id,
            Incident.occurred_at,
            Assessment.victim_level,
            Assessment.marac_refer,
            Assessment.marac_repeat,
            Assessment.serial_perpetrator,
            Assessment.separation_related,
            *(getattr(Assessment, column) for column in CHILD_LEVEL_COLUMNS),
            *(getattr(Assessment, f"children_{fact}") for fact in CHILD_COUNTS),
        )
        .join(Assessment, Assessment.incident_id == Incident.id)
        .where(_in_period(area, start, end), Assessment.version == latest)
    )
    levels = len(CHILD_LEVELS)
    return [
        IncidentFacts(
            id=row[0],
            occurred_at=row[1],
            victim_level=row[2],
            marac_refer=bool(row[3]),
            marac_repeat=bool(row[4]),
            serial_perpetrator=bool(row[5]),
            separation_related=bool(row[6]),
            child_levels=dict(zip(CHILD_LEVELS, _counts(row[7 : 7 + levels]), strict=True)),
            children=dict(zip(CHILD_COUNTS, _counts(row[7 + levels :]), strict=True)),
        )
        for row in map(tuple, _rows(session, query))  # a tuple slices cheaply; a Row does not
    ]


def _counts(values: tuple[Any, ...]) -> list[int]:
    return [int(v or 0) for v in values]


def _resolved(person: type[Person]) -> Any:
    return func.coalesce(person.merged_into_id, person.id)


def occurrences(
    session: Session,
    area: str,
    start: dt.datetime,
    end: dt.datetime,
    *,
    roles: tuple[str, ...],
    since: dt.datetime,
) -> dict[str, tuple[list[Occurrence], list[Occurrence]]]:
    """For each of ``roles``: the period's incidents with a person in that role (resolved
    through merges), and every incident (any area) since ``since`` that one of those
    persons had in that role.

    One statement for every role: the period's persons are found once (a CTE), and the
    period's own incidents are the rows of their history that are in the area and period
    (each is in its person's history), so the period is not read again."""
    person = aliased(Person)
    whos = (
        select(IncidentPerson.role.label("role"), _resolved(person).label("who"))
        .join(Incident, IncidentPerson.incident_id == Incident.id)
        .join(person, person.id == IncidentPerson.person_id)
        .where(_in_period(area, start, end), IncidentPerson.role.in_(roles))
        .cte("whos")
    )
    distinct = select(whos.c.role, whos.c.who).distinct().subquery("period_persons")
    # Their records: each survivor and the records merged into it, with the survivor.
    # Two branches, each on its own index (the primary key, ``merged_into_id``): one
    # ``OR`` of the two would read every person (bench/report_bench.py).
    member = aliased(Person)
    also_a_survivor = (
        select(whos.c.who).where(whos.c.role == distinct.c.role, whos.c.who == member.id).exists()
    )
    records = union_all(
        select(member.id, _resolved(member).label("who"), distinct.c.role).join(
            distinct, member.id == distinct.c.who
        ),
        select(member.id, _resolved(member).label("who"), distinct.c.role)
        .join(distinct, member.merged_into_id == distinct.c.who)
        .where(~also_a_survivor),
    ).subquery()
    linked = aliased(IncidentPerson)
    earlier = aliased(Incident)
    in_period = (earlier.area == area) & (earlier.occurred_at >= start)
    history = (
        select(records.c.role, records.c.who, earlier.id, earlier.occurred_at, in_period)
        .select_from(records)
        .join(linked, (linked.person_id == records.c.id) & (linked.role == records.c.role))
        .join(earlier, earlier.id == linked.incident_id)
        .where(
            earlier.occurred_at >= since,
            earlier.occurred_at < end,
            earlier.erased_at.is_(None),
        )
    )
    out: dict[str, tuple[list[Occurrence], list[Occurrence]]] = {r: ([], []) for r in roles}
    for role, who, incident_id, occurred_at, of_period in _rows(session, history):
        occurrence = Occurrence(who, incident_id, occurred_at)
        period_rows, history_rows = out[role]
        history_rows.append(occurrence)
        if of_period:
            period_rows.append(occurrence)
    return out


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
    return [FlagFacts(*row) for row in _rows(session, query)]


def review_facts(
    session: Session, area: str, start: dt.datetime, end: dt.datetime
) -> list[ReviewFacts]:
    """The area's incidents whose retention review fell due in [start, end)."""
    query = select(Incident.review_due_at, Incident.erased_at).where(
        Incident.area == area,
        Incident.review_due_at >= start,
        Incident.review_due_at < end,
    )
    return [ReviewFacts(due, erased) for due, erased in _rows(session, query) if due is not None]
