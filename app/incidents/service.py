"""Incident intake: validate, deduplicate, store, score and flag in one unit of work.

The caller's session is the request's unit of work; nothing here commits. Replays are
detected twice: by ``Idempotency-Key`` (scoped to the principal) and by the natural key
``source.system`` + ``source.reference`` (a UNIQUE constraint), so a retry that lost its
key still never creates a second incident.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, Forbidden
from app.idempotency import service as idempotency
from app.incidents import models, repository
from app.incidents.schemas import Incident, IntakeResponse

INTAKE_ROUTE = "POST /v1/incidents"


@dataclass(frozen=True)
class IntakeResult:
    status_code: int
    body: dict[str, Any]
    location: str
    incident_id: uuid.UUID
    replayed: bool


def incident_location(incident_id: uuid.UUID | str) -> str:
    return f"/v1/incidents/{incident_id}"


def check_source_system(principal: Principal, incident: Incident) -> None:
    if principal.source_system is not None and incident.source.system != principal.source_system:
        raise Forbidden("This credential may only submit incidents for its own source system.")


def intake(
    session: Session,
    *,
    principal: Principal,
    incident: Incident,
    raw_body: bytes,
    fingerprint: str,
    idempotency_key: str | None,
    settings: Settings,
    now: datetime | None = None,
) -> IntakeResult:
    now = now or utcnow()
    check_source_system(principal, incident)

    if idempotency_key is not None:
        replay = idempotency.lookup(
            session,
            principal_id=principal.id,
            key=idempotency_key,
            route=INTAKE_ROUTE,
            fingerprint=fingerprint,
            now=now,
        )
        if replay is not None and replay.body is not None and replay.location:
            return IntakeResult(
                200,
                replay.body,
                replay.location,
                uuid.UUID(str(replay.body["incident_id"])),
                replayed=True,
            )

    existing = repository.get_by_source(session, incident.source.system, incident.source.reference)
    if existing is not None:
        return _replay_or_conflict(session, existing, fingerprint)

    result = _create(
        session,
        principal=principal,
        incident=incident,
        raw_body=raw_body,
        fingerprint=fingerprint,
        settings=settings,
        now=now,
    )
    if idempotency_key is not None:
        idempotency.remember(
            session,
            principal_id=principal.id,
            key=idempotency_key,
            route=INTAKE_ROUTE,
            fingerprint=fingerprint,
            status_code=result.status_code,
            body=result.body,
            location=result.location,
            retention_days=settings.idempotency_retention_days,
            now=now,
        )
    return result


def _replay_or_conflict(
    session: Session, existing: models.Incident, fingerprint: str
) -> IntakeResult:
    location = incident_location(existing.id)
    if existing.original_sha256 == fingerprint and existing.erased_at is None:
        original = repository.submission(session, existing.id, 1)
        if original is not None and original.response_body is not None:
            return IntakeResult(200, original.response_body, location, existing.id, replayed=True)
    raise Conflict(
        "An incident with this source system and reference already exists with different "
        "content; submit changes to it as a revision.",
        incident_id=str(existing.id),
        incident_location=location,
    )


def _create(
    session: Session,
    *,
    principal: Principal,
    incident: Incident,
    raw_body: bytes,
    fingerprint: str,
    settings: Settings,
    now: datetime,
) -> IntakeResult:
    row = models.Incident(
        source_system=incident.source.system,
        source_reference=incident.source.reference,
        area=incident.area,
        occurred_at=incident.occurred_at,
        reported_at=incident.reported_at,
        received_at=now,
        updated_at=now,
        created_by=principal.id,
        version=1,
        original_sha256=fingerprint,
        review_due_at=_add_years(now, settings.review_years_standard),
    )
    session.add(row)
    session.flush()
    submission = models.IncidentSubmission(
        incident_id=row.id,
        revision=1,
        kind="original",
        received_at=now,
        principal_id=principal.id,
        body_sha256=fingerprint,
        body_raw=raw_body.decode("utf-8"),
        body=incident.model_dump(mode="json"),
    )
    session.add(submission)
    link_persons(session, row, incident)
    session.flush()

    body = IntakeResponse(
        incident_id=str(row.id), version=1, received_at=now, assessment=None, flags=[]
    ).model_dump(mode="json")
    submission.response_body = body
    session.flush()
    return IntakeResult(201, body, incident_location(row.id), row.id, replayed=False)


def link_persons(session: Session, row: models.Incident, incident: Incident) -> None:
    """Attach each person to a stored person, reusing one that holds a strong identifier."""
    for position, person in enumerate(incident.persons):
        identifiers = [
            repository.normalise_identifier(i, incident.source.system) for i in person.identifiers
        ]
        stored = (
            repository.find_person_by_identifiers(session, identifiers) if identifiers else None
        )
        if stored is None:
            stored = repository.add_person(session, identifiers)
        repository.add_incident_person(
            session, incident=row, person=stored, position=position, data=person
        )


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def person_ids(session: Session, incident_id: uuid.UUID) -> list[uuid.UUID]:
    row = repository.get(session, incident_id)
    return [p.person_id for p in row.persons] if row is not None else []
