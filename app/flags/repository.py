"""SQL for stored flags: work lists in keyset order, reads, conditional updates, history."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Integer,
    Row,
    Select,
    Uuid,
    and_,
    case,
    exists,
    func,
    literal,
    literal_column,
    not_,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.db import UTCDateTime, insert_rows, table_of
from app.flags.models import OPEN_STATUSES, Flag, FlagEvent
from app.notify.models import Notification

# The open statuses as SQL literals. Partial indexes are only used when the planner can
# prove that the query's predicate implies the index's; with bound parameters a generic
# plan cannot, so the list is rendered into the statement exactly as in the index.
OPEN_PREDICATE_SQL = "status IN (" + ", ".join(f"'{s}'" for s in OPEN_STATUSES) + ")"

FLAGS = table_of(Flag)

# More areas than this and one filtered scan beats a union of per-area index scans.
MAX_UNION_AREAS = 20


def is_open() -> ColumnElement[bool]:
    """``flags.status IN (<the open statuses>)``, rendered with literal values."""
    return Flag.status.in_([literal_column(f"'{s}'") for s in OPEN_STATUSES])


def merged_keyset_ids(
    session: Session, scans: Sequence[Select[Any, Any, Any]], limit: int
) -> list[uuid.UUID]:
    """Union per-area scans, each ordered by its sort key and limited, then merge.

    Every scan selects its sort key columns with the row id last; the first ``limit`` ids
    in key order are returned. Each scan is an index range scan of one area, so a
    principal with a few areas gets the same cheap first page as one with a single area.
    """
    if len(scans) == 1:
        return [row[-1] for row in session.execute(scans[0])]
    merged = union_all(*(s.subquery().select() for s in scans)).subquery()
    cols = list(merged.c)
    return list(session.scalars(select(cols[-1]).order_by(*cols).limit(limit)))


# --------------------------------------------------------------------------- work lists

FlagKey = tuple[int, dt.datetime, uuid.UUID]
FLAG_ORDER = (Flag.priority, Flag.due_at, Flag.id)


@dataclass(frozen=True)
class FlagFilters:
    """What a flag listing is limited to; ``None`` means no limit on that field."""

    statuses: tuple[str, ...] = OPEN_STATUSES
    areas: frozenset[str] | None = None
    agencies: frozenset[str] | None = None
    # The schools (URNs) whose pupils' flags a school may see (app.auth.policy.flag_scope).
    school_urns: frozenset[str] | None = None
    types: frozenset[str] | None = None
    subject_kind: str | None = None
    person_id: uuid.UUID | None = None
    incident_id: uuid.UUID | None = None
    due_before: dt.datetime | None = None
    due_after: dt.datetime | None = None
    overdue: bool | None = None
    needs_review: bool | None = None
    # True: only open flags with a notification problem (:func:`notification_problem`).
    notification_problem: bool | None = None


def notification_problem(now: dt.datetime) -> ColumnElement[bool]:
    """The flag (an open one, with the caller's ``is_open()``) has a notification that
    needs a person: one that **failed** (dead-lettered after its retry budget), or the
    notice of it being raised still **not acknowledged** by the receiving agency now that
    the flag is past its due time (pending or only delivered). Served by the outbox's
    flag index."""
    return exists().where(
        Notification.flag_id == Flag.id,
        or_(
            Notification.status == "failed",
            and_(
                Notification.kind == "raised",
                Notification.status.in_(("pending", "delivered")),
                Flag.due_at < now,
            ),
        ),
    )


def flag_key_tuple(key: FlagKey) -> ColumnElement[Any]:
    priority, due_at, flag_id = key
    return tuple_(
        literal(priority, Integer()), literal(due_at, UTCDateTime()), literal(flag_id, Uuid())
    )


def _conditions(f: FlagFilters, now: dt.datetime) -> list[ColumnElement[bool]]:
    out: list[ColumnElement[bool]] = []
    if set(f.statuses) == set(OPEN_STATUSES):
        out.append(is_open())
    elif len(f.statuses) == 1:
        out.append(Flag.status == f.statuses[0])
    else:
        out.append(Flag.status.in_(sorted(f.statuses)))
    if f.agencies is not None:
        agencies = sorted(f.agencies)
        out.append(Flag.agency == agencies[0] if len(agencies) == 1 else Flag.agency.in_(agencies))
    if f.school_urns is not None:
        urns = sorted(f.school_urns)
        out.append(Flag.school_urn == urns[0] if len(urns) == 1 else Flag.school_urn.in_(urns))
    if f.types is not None:
        out.append(Flag.type.in_(sorted(f.types)))
    if f.subject_kind is not None:
        out.append(Flag.subject_kind == f.subject_kind)
    if f.person_id is not None:
        out.append(Flag.subject_person_id == f.person_id)
    if f.incident_id is not None:
        out.append(Flag.incident_id == f.incident_id)
    if f.due_before is not None:
        out.append(Flag.due_at < f.due_before)
    if f.due_after is not None:
        out.append(Flag.due_at >= f.due_after)
    if f.overdue is True:
        out += [is_open(), Flag.due_at < now]
    elif f.overdue is False:
        out.append(or_(not_(is_open()), Flag.due_at >= now))
    if f.needs_review is not None:
        out.append(Flag.needs_review.is_(f.needs_review))
    if f.notification_problem is True:
        out += [is_open(), notification_problem(now)]
    elif f.notification_problem is False:
        out.append(or_(not_(is_open()), not_(notification_problem(now))))
    return out


def list_flags(
    session: Session,
    filters: FlagFilters,
    *,
    now: dt.datetime,
    after: FlagKey | None,
    limit: int,
) -> list[Row[Any]]:
    """Up to ``limit`` flags after ``after`` in (priority, due time, id) order.

    Rows of the table, not ORM objects: a page is read, never changed, and loading fifty
    mapped objects cost more than the query.

    A school's listing is a union of one scan per school (an index range scan of the open
    flags of that agency and school), the areas a filter on each; any other is one scan
    per area."""
    areas = None if filters.areas is None else sorted(filters.areas)
    urns = None if filters.school_urns is None else sorted(filters.school_urns)
    if (areas is not None and not areas) or (urns is not None and not urns):
        return []
    conditions = _conditions(filters, now)
    if after is not None:
        conditions.append(tuple_(*FLAG_ORDER) > flag_key_tuple(after))
    if urns is not None and len(urns) <= MAX_UNION_AREAS:
        if areas is not None:
            conditions.append(Flag.area.in_(areas))
        partitions = [Flag.school_urn == urn for urn in urns]
    elif areas is None or len(areas) > MAX_UNION_AREAS:
        stmt = select(FLAGS).where(*conditions)
        if areas is not None:
            stmt = stmt.where(Flag.area.in_(areas))
        return list(session.connection().execute(stmt.order_by(*FLAG_ORDER).limit(limit)))
    else:
        partitions = [Flag.area == area for area in areas]
    scans = [
        select(*FLAG_ORDER).where(part, *conditions).order_by(*FLAG_ORDER).limit(limit)
        for part in partitions
    ]
    ids = merged_keyset_ids(session, scans, limit)
    if len(ids) == 0:
        return []
    found = session.connection().execute(select(FLAGS).where(FLAGS.c.id.in_(ids)))
    by_id = {f.id: f for f in found}
    return [by_id[i] for i in ids if i in by_id]


def get_flag(session: Session, flag_id: uuid.UUID) -> Flag | None:
    return session.get(Flag, flag_id)


def update_if_version(
    session: Session, flag: Flag, expected_version: int, values: dict[str, Any]
) -> bool:
    """``UPDATE flags SET … , version = version + 1 WHERE id = ? AND version = ?``.

    False when another request changed the flag first (nothing is written). On PostgreSQL
    a concurrent writer holding the row makes this wait, then re-check the version.
    """
    result = session.execute(
        update(Flag)
        .where(Flag.id == flag.id, Flag.version == expected_version)
        .values(**values, version=Flag.version + 1)
        .execution_options(synchronize_session=False)
    )
    changed = getattr(result, "rowcount", 0) == 1
    session.refresh(flag)
    return changed


def add_event(
    session: Session,
    flag: Flag,
    *,
    principal_id: str,
    role: str,
    change: str,
    from_value: str | None,
    to_value: str | None,
    at: dt.datetime,
    note: str | None = None,
) -> FlagEvent:
    event = FlagEvent(
        flag_id=flag.id,
        at=at,
        principal_id=principal_id,
        role=role,
        change=change,
        from_value=from_value,
        to_value=to_value,
        note=note,
    )
    session.add(event)
    session.flush()
    return event


def history(session: Session, flag_id: uuid.UUID) -> list[FlagEvent]:
    return list(
        session.scalars(
            select(FlagEvent)
            .where(FlagEvent.flag_id == flag_id)
            .order_by(FlagEvent.at, FlagEvent.id)
        )
    )


def overdue_by_type_and_agency(session: Session, now: dt.datetime) -> list[tuple[str, str, int]]:
    """Open flags past their due time, counted by type and agency (the overdue gauge)."""
    rows = session.execute(
        select(Flag.type, Flag.agency, func.count())
        .where(is_open(), Flag.due_at < now)
        .group_by(Flag.type, Flag.agency)
    )
    return [(t, a, int(n)) for t, a, n in rows]


def overdue_unnoticed(session: Session, now: dt.datetime, limit: int) -> list[Flag]:
    """Open flags past their due time whose overdue notices are not written yet, oldest due
    first, locked (``SKIP LOCKED`` on PostgreSQL: two sweeps never take the same flag)."""
    return list(
        session.scalars(
            select(Flag)
            .where(is_open(), Flag.due_at < now, Flag.overdue_noticed_at.is_(None))
            .order_by(Flag.due_at, Flag.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )


def mark_overdue_noticed(session: Session, flag_ids: Sequence[uuid.UUID], now: dt.datetime) -> None:
    if flag_ids:
        session.execute(
            update(Flag)
            .where(Flag.id.in_(list(flag_ids)))
            .values(overdue_noticed_at=now)
            .execution_options(synchronize_session=False)
        )


def open_flag_counts(
    session: Session, incident_ids: Collection[uuid.UUID], now: dt.datetime
) -> dict[uuid.UUID, tuple[int, int]]:
    """Per incident with open flags: how many are past their due time, and how many have a
    notification problem (:func:`notification_problem`), in one aggregate."""
    if not incident_ids:
        return {}
    rows = session.execute(
        select(
            Flag.incident_id,
            func.sum(case((Flag.due_at < now, 1), else_=0)),
            func.sum(case((notification_problem(now), 1), else_=0)),
        )
        .where(Flag.incident_id.in_(list(incident_ids)), is_open())
        .group_by(Flag.incident_id)
    )
    return {incident_id: (int(late), int(problems)) for incident_id, late, problems in rows}


def insert_flags(
    session: Session, flags: Sequence[dict[str, Any]], events: Sequence[dict[str, Any]]
) -> None:
    """New flags and their history events, one batched statement each."""
    insert_rows(session, Flag, flags)
    insert_rows(session, FlagEvent, events)


def flags_of_incident(session: Session, incident_id: uuid.UUID) -> list[Flag]:
    """The incident's flags in the order responses list them."""
    return list(
        session.scalars(
            select(Flag)
            .where(Flag.incident_id == incident_id)
            .order_by(Flag.priority, Flag.due_at, Flag.type, Flag.subject_ref)
        )
    )


def dedupe_keys(session: Session, incident_id: uuid.UUID) -> set[str]:
    return set(session.scalars(select(Flag.dedupe_key).where(Flag.incident_id == incident_id)))


def move_to_area(session: Session, incident_id: uuid.UUID, area: str) -> None:
    """A corrected area moves the incident's flags, and so the case, to that area's teams."""
    session.execute(update(Flag).where(Flag.incident_id == incident_id).values(area=area))


def agency_flag_subjects(
    session: Session,
    incident_id: uuid.UUID,
    *,
    agency: str | None,
    school_urns: frozenset[str] | None = None,
) -> set[str]:
    """Person refs that this agency has flags about in this incident (empty: no access);
    with ``school_urns``, only flags about those schools' pupils."""
    if school_urns is not None and not school_urns:
        return set()
    stmt = select(Flag.subject_ref).where(Flag.incident_id == incident_id, Flag.agency == agency)
    if school_urns is not None:
        stmt = stmt.where(Flag.school_urn.in_(sorted(school_urns)))
    return set(session.scalars(stmt))
