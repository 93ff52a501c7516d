"""All SQL for incidents, their submissions and the persons in them."""

from __future__ import annotations

import uuid
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, bindparam, delete, or_, select, update
from sqlalchemy.orm import Session

from app.contract.incident import Identifier
from app.db import insert_rows, table_of
from app.incidents import models


def get(session: Session, incident_id: uuid.UUID) -> models.Incident | None:
    return session.get(models.Incident, incident_id)


def lock_incident(session: Session, incident_id: uuid.UUID) -> None:
    """Lock the incident's row for this transaction (PostgreSQL; SQLite serialises writers).

    Whatever changes an incident's flags or assessment takes this lock first, so
    concurrent changes to one incident queue up instead of deadlocking or computing its
    queue row from a snapshot that misses the other's change.
    """
    session.execute(
        select(models.Incident.id).where(models.Incident.id == incident_id).with_for_update()
    )


_INCIDENTS = table_of(models.Incident)
_BY_SOURCE = select(_INCIDENTS.c.id, _INCIDENTS.c.original_sha256, _INCIDENTS.c.erased_at).where(
    _INCIDENTS.c.source_system == bindparam("system"),
    _INCIDENTS.c.source_reference == bindparam("reference"),
)


def by_source(session: Session, system: str, reference: str) -> Row[Any, Any, Any] | None:
    """The incident with this natural key: its id, original digest and erasure, if any."""
    return (
        session.connection().execute(_BY_SOURCE, {"system": system, "reference": reference}).first()
    )


def latest_submission(session: Session, incident_id: uuid.UUID) -> models.IncidentSubmission | None:
    return session.scalar(
        select(models.IncidentSubmission)
        .where(models.IncidentSubmission.incident_id == incident_id)
        .order_by(models.IncidentSubmission.revision.desc())
        .limit(1)
    )


def original_response(session: Session, incident_id: uuid.UUID) -> dict[str, Any] | None:
    """The response returned for the original submission (replayed verbatim on a retry)."""
    sub = models.IncidentSubmission
    body: dict[str, Any] | None = session.scalar(
        select(sub.response_body).where(sub.incident_id == incident_id, sub.revision == 1)
    )
    return body


def normalise_identifier(identifier: Identifier, source_system: str) -> tuple[str, str]:
    value = "".join(identifier.value.split()).upper()
    if identifier.scheme == "source":
        # A records system's own person id means nothing in another system.
        value = f"{source_system.upper()}:{value}"
    return identifier.scheme, value


def insert_incident(session: Session, row: Mapping[str, Any]) -> None:
    insert_rows(session, models.Incident, [row])


def insert_submission(session: Session, row: Mapping[str, Any]) -> None:
    insert_rows(session, models.IncidentSubmission, [row])


def insert_incident_persons(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    insert_rows(session, models.IncidentPerson, rows)


def delete_incident_persons(session: Session, incident_id: uuid.UUID) -> None:
    """Remove the incident's person rows (a revision writes them anew)."""
    session.execute(
        delete(models.IncidentPerson).where(models.IncidentPerson.incident_id == incident_id)
    )


def update_incident(session: Session, incident_id: uuid.UUID, values: Mapping[str, Any]) -> None:
    session.execute(
        update(models.Incident)
        .where(models.Incident.id == incident_id)
        .values(**values)
        .execution_options(synchronize_session=False)
    )


def reviews_due(
    session: Session,
    *,
    before: datetime,
    after: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[models.Incident]:
    """Live incidents whose retention review date is at or before ``before``, in
    (review date, id) order, after the keyset position ``after``."""
    incident = models.Incident
    query = select(incident).where(incident.erased_at.is_(None), incident.review_due_at <= before)
    if after is not None:
        when, last_id = after
        query = query.where(
            or_(
                incident.review_due_at > when,
                (incident.review_due_at == when) & (incident.id > last_id),
            )
        )
    return list(session.scalars(query.order_by(incident.review_due_at, incident.id).limit(limit)))


def search(
    session: Session,
    *,
    areas: Collection[str] | None,
    source_reference: str | None = None,
    source_system: str | None = None,
    person_ids: Collection[uuid.UUID] | None = None,
    after: tuple[datetime, uuid.UUID] | None = None,
    limit: int,
) -> list[models.Incident]:
    """Live incidents with this reference (and system), or in which any of these person
    records is, within ``areas`` (None: every area); newest first, keyset-paged."""
    incident = models.Incident
    query = select(incident).where(incident.erased_at.is_(None))
    if source_reference is not None:
        query = query.where(incident.source_reference == source_reference)
    if source_system is not None:
        query = query.where(incident.source_system == source_system)
    if person_ids is not None:
        ip = models.IncidentPerson
        query = query.where(
            incident.id.in_(select(ip.incident_id).where(ip.person_id.in_(sorted(person_ids))))
        )
    if areas is not None:
        query = query.where(incident.area.in_(sorted(areas)))
    if after is not None:
        at, row_id = after
        query = query.where(
            or_(
                incident.occurred_at < at,
                and_(incident.occurred_at == at, incident.id < row_id),
            )
        )
    query = query.order_by(incident.occurred_at.desc(), incident.id.desc()).limit(limit)
    return list(session.scalars(query))
