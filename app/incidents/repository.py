"""All SQL for incidents and the persons in them."""

from __future__ import annotations

import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.flags.models import Flag
from app.incidents import models
from app.incidents.schemas import Identifier
from app.incidents.schemas import Person as PersonIn


def get(session: Session, incident_id: uuid.UUID) -> models.Incident | None:
    return session.get(models.Incident, incident_id)


def get_by_source(session: Session, system: str, reference: str) -> models.Incident | None:
    return session.scalar(
        select(models.Incident).where(
            models.Incident.source_system == system,
            models.Incident.source_reference == reference,
        )
    )


def latest_submission(session: Session, incident_id: uuid.UUID) -> models.IncidentSubmission | None:
    return session.scalar(
        select(models.IncidentSubmission)
        .where(models.IncidentSubmission.incident_id == incident_id)
        .order_by(models.IncidentSubmission.revision.desc())
        .limit(1)
    )


def submission(
    session: Session, incident_id: uuid.UUID, revision: int
) -> models.IncidentSubmission | None:
    return session.scalar(
        select(models.IncidentSubmission).where(
            models.IncidentSubmission.incident_id == incident_id,
            models.IncidentSubmission.revision == revision,
        )
    )


def normalise_identifier(identifier: Identifier, source_system: str) -> tuple[str, str]:
    value = "".join(identifier.value.split()).upper()
    if identifier.scheme == "source":
        # A records system's own person id means nothing in another system.
        value = f"{source_system.upper()}:{value}"
    return identifier.scheme, value


def add_incident_person(
    session: Session,
    *,
    incident: models.Incident,
    person: models.Person,
    position: int,
    data: PersonIn,
) -> models.IncidentPerson:
    row = models.IncidentPerson(
        incident_id=incident.id,
        person_id=person.id,
        position=position,
        ref=data.ref,
        role=data.role,
        given_name=data.name.given if data.name else None,
        family_name=data.name.family if data.name else None,
        date_of_birth=data.date_of_birth,
        unborn=data.unborn,
    )
    session.add(row)
    return row


def flags_of_incident(session: Session, incident_id: uuid.UUID) -> list[Flag]:
    return list(
        session.scalars(
            select(Flag)
            .where(Flag.incident_id == incident_id)
            .order_by(Flag.priority, Flag.due_at, Flag.type, Flag.subject_ref)
        )
    )
