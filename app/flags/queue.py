"""The MASH triage queue: one row per incident with open flags, kept in step with the flags.

``GET /v1/queue`` orders incidents by the highest risk among the victim and the children,
then by the earliest due open flag. Working that out from the flags and the latest
assessment on every read means aggregating millions of flag rows; instead each incident
that has open flags has one small row here, rewritten by :func:`refresh_queue_row` in the
same transaction as whatever changed its flags or its assessment (intake, revision,
judgement, a flag's status, erasure). A first page is then an index range scan.

What changes with the clock alone (how many flags are overdue, how many notifications
went unacknowledged past their flag's due time) is not stored: it is counted at read time
for the rows of the page (``repository.open_flag_counts``).

The partial indexes on ``flags`` that serve the flag work lists (``GET /v1/flags``) are
declared here too, beside the queue's own, because both exist for the listing routes and
come from the same migration.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    ForeignKey,
    Index,
    Integer,
    Row,
    String,
    Uuid,
    exists,
    func,
    literal,
    not_,
    select,
    text,
    tuple_,
)
from sqlalchemy.orm import InstrumentedAttribute, Mapped, Session, mapped_column
from sqlalchemy.sql.elements import ColumnElement

from app.assessments.models import Assessment
from app.contract.levels import CHILD_LEVELS, CHILD_RANK
from app.db import Base, UTCDateTime, insert_rows, table_of, utcnow
from app.flags.models import Flag
from app.flags.repository import (
    MAX_UNION_AREAS,
    OPEN_PREDICATE_SQL,
    is_open,
    merged_keyset_ids,
    notification_problem,
)
from app.incidents.models import Incident

# The highest risk rank there is (a severe child); sort_rank = MAX_RISK_RANK - risk_rank,
# so that one ascending index order puts the highest risk first.
MAX_RISK_RANK = len(CHILD_LEVELS) - 1


def _open_flags_index(name: str, *columns: InstrumentedAttribute[Any]) -> Index:
    """A partial index over the open flags only (the work lists never read closed ones)."""
    return Index(
        name,
        *columns,
        postgresql_where=text(OPEN_PREDICATE_SQL),
        sqlite_where=text(OPEN_PREDICATE_SQL),
    )


# Flag work lists (GET /v1/flags, default: the open flags), in the API's order.
_open_flags_index("ix_flags_open_priority_due_at", Flag.priority, Flag.due_at, Flag.id)
_open_flags_index(
    "ix_flags_open_area_priority_due_at", Flag.area, Flag.priority, Flag.due_at, Flag.id
)
_open_flags_index(
    "ix_flags_open_agency_area_priority_due_at",
    Flag.agency,
    Flag.area,
    Flag.priority,
    Flag.due_at,
    Flag.id,
)
# A school's work list: the open flags about the pupils of one school (one scan per school).
_open_flags_index(
    "ix_flags_open_agency_school_urn_priority_due_at",
    Flag.agency,
    Flag.school_urn,
    Flag.priority,
    Flag.due_at,
    Flag.id,
)
# The overdue gauge and the overdue filter: open flags by due time (index-only on PostgreSQL).
_open_flags_index("ix_flags_open_due_at_type_agency", Flag.due_at, Flag.type, Flag.agency)


class QueueEntry(Base):
    """An incident awaiting MASH triage: it has at least one open flag."""

    __tablename__ = "incident_queue"
    __table_args__ = (
        Index("ix_incident_queue_order", "sort_rank", "earliest_due_at", "incident_id"),
        Index(
            "ix_incident_queue_area_order", "area", "sort_rank", "earliest_due_at", "incident_id"
        ),
    )

    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), primary_key=True)
    area: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    # Highest of the victim's and every child's level in the latest assessment (0-3).
    risk_rank: Mapped[int] = mapped_column(Integer)
    sort_rank: Mapped[int] = mapped_column(Integer)
    victim_level: Mapped[str] = mapped_column(String(16))
    highest_child_level: Mapped[str | None] = mapped_column(String(24))
    assessment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assessments.id"))
    assessment_version: Mapped[int] = mapped_column(Integer)
    open_flags: Mapped[int] = mapped_column(Integer)
    earliest_due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


def refresh_queue_row(session: Session, incident_id: uuid.UUID) -> QueueEntry | None:
    """Rewrite the incident's queue row from its flags and latest assessment.

    Call it in the transaction that changed the incident's flags or assessment. The
    incident row is locked first (``SELECT … FOR UPDATE`` on PostgreSQL; SQLite already
    serialises writers), so two concurrent changes to one incident's flags cannot each
    write a row computed without the other's change: under READ COMMITTED the second
    waits, and its aggregate then sees the first's committed flags.
    """
    session.flush()
    # Read (and lock) the columns afresh: another transaction may have just committed.
    incident = session.execute(
        select(Incident.area, Incident.occurred_at, Incident.erased_at)
        .where(Incident.id == incident_id)
        .with_for_update()
    ).one_or_none()
    open_flags, earliest = session.execute(
        select(func.count(), func.min(Flag.due_at)).where(
            Flag.incident_id == incident_id, is_open()
        )
    ).one()
    latest = session.scalars(
        select(Assessment)
        .where(Assessment.incident_id == incident_id)
        .order_by(Assessment.version.desc())
        .limit(1)
    ).one_or_none()
    entry = session.get(QueueEntry, incident_id)
    if incident is None or incident.erased_at is not None or latest is None or not open_flags:
        if entry is not None:
            session.delete(entry)
            session.flush()
        return None
    values = queue_values(
        area=incident.area,
        occurred_at=incident.occurred_at,
        assessment_id=latest.id,
        assessment_version=latest.version,
        risk_rank=latest.risk_rank,
        result=latest.result or {},
        open_flags=int(open_flags),
        earliest_due_at=earliest,
    )
    if entry is None:
        entry = QueueEntry(incident_id=incident_id, **values)
        session.add(entry)
    else:
        for name, value in values.items():
            setattr(entry, name, value)
    session.flush()
    return entry


def queue_values(
    *,
    area: str,
    occurred_at: dt.datetime,
    assessment_id: uuid.UUID,
    assessment_version: int,
    risk_rank: int,
    result: dict[str, Any],
    open_flags: int,
    earliest_due_at: dt.datetime,
) -> dict[str, Any]:
    """The queue row's columns from the latest assessment and the open flags."""
    children = [c.get("level") for c in result.get("children", [])]
    highest_child = max(
        (level for level in children if level in CHILD_RANK),
        key=CHILD_RANK.__getitem__,
        default=None,
    )
    return {
        "area": area,
        "occurred_at": occurred_at,
        "risk_rank": risk_rank,
        "sort_rank": MAX_RISK_RANK - risk_rank,
        "victim_level": result["victim"]["level"],
        "highest_child_level": highest_child,
        "assessment_id": assessment_id,
        "assessment_version": assessment_version,
        "open_flags": open_flags,
        "earliest_due_at": earliest_due_at,
        "updated_at": utcnow(),
    }


def insert_queue_row(session: Session, incident_id: uuid.UUID, values: dict[str, Any]) -> None:
    """The queue row of a new incident (nothing to read: its flags are all new)."""
    insert_rows(session, QueueEntry, [{"incident_id": incident_id, **values}])


# --------------------------------------------------------------------------- reading

QueueKey = tuple[int, dt.datetime, uuid.UUID]


@dataclass(frozen=True)
class OpenFlagMatch:
    """Which incidents the queue keeps: those with at least one open flag matching all of
    these (``None``: any value). ``overdue``: past its due time at ``now`` (False: not).
    ``notification_problem``: with a notification that failed or went unacknowledged past
    the flag's due time (``repository.notification_problem``; False: without)."""

    agencies: frozenset[str] | None = None
    types: frozenset[str] | None = None
    overdue: bool | None = None
    notification_problem: bool | None = None

    @property
    def empty(self) -> bool:
        return (
            self.agencies is None
            and self.types is None
            and self.overdue is None
            and self.notification_problem is None
        )


def _has_open_flag(match: OpenFlagMatch, now: dt.datetime) -> ColumnElement[bool]:
    """``EXISTS`` an open flag of the queue row's incident that matches (served by the
    flags' incident index)."""
    conditions: list[ColumnElement[bool]] = [
        Flag.incident_id == QueueEntry.incident_id,
        is_open(),
    ]
    if match.agencies is not None:
        conditions.append(Flag.agency.in_(sorted(match.agencies)))
    if match.types is not None:
        conditions.append(Flag.type.in_(sorted(match.types)))
    if match.overdue is True:
        conditions.append(Flag.due_at < now)
    elif match.overdue is False:
        conditions.append(Flag.due_at >= now)
    if match.notification_problem is True:
        conditions.append(notification_problem(now))
    elif match.notification_problem is False:
        conditions.append(not_(notification_problem(now)))
    return exists().where(*conditions)


def queue_page(
    session: Session,
    *,
    areas: Collection[str] | None,
    after: QueueKey | None,
    limit: int,
    match: OpenFlagMatch | None = None,
    now: dt.datetime | None = None,
) -> list[Row[Any]]:
    """The next ``limit`` queue rows after ``after`` in queue order, limited to ``areas``
    and, with ``match``, to incidents with an open flag that matches it at ``now``.

    Order: ``sort_rank`` (highest risk first), earliest due open flag, incident id. Each
    area's rows come from its own index range scan and are merged, so a principal with a
    few areas gets the same index-only first page as one with a single area.
    """
    order = (QueueEntry.sort_rank, QueueEntry.earliest_due_at, QueueEntry.incident_id)
    conditions: list[ColumnElement[bool]] = (
        [tuple_(*order) > _key_tuple(after)] if after is not None else []
    )
    if match is not None and not match.empty:
        conditions.append(_has_open_flag(match, now or utcnow()))
    wanted = None if areas is None else sorted(set(areas))
    if wanted is not None and not wanted:
        return []
    if wanted is None or len(wanted) > MAX_UNION_AREAS:
        stmt = select(table_of(QueueEntry)).where(*conditions)
        if wanted is not None:
            stmt = stmt.where(QueueEntry.area.in_(wanted))
        return list(session.connection().execute(stmt.order_by(*order).limit(limit)))
    scans = [
        select(*order).where(QueueEntry.area == area, *conditions).order_by(*order).limit(limit)
        for area in wanted
    ]
    ids = merged_keyset_ids(session, scans, limit)
    if not ids:
        return []
    found = session.execute(select(table_of(QueueEntry)).where(QueueEntry.incident_id.in_(ids)))
    by_id = {row.incident_id: row for row in found}
    return [by_id[i] for i in ids if i in by_id]


def _key_tuple(key: QueueKey) -> ColumnElement[Any]:
    rank, due, incident_id = key
    return tuple_(
        literal(rank, Integer()),
        literal(due, UTCDateTime()),
        literal(incident_id, Uuid()),
    )
