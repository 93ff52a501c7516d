"""HTTP routes for incidents."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Response
from sqlalchemy.exc import IntegrityError

from app.auth.deps import require_roles
from app.auth.principal import Principal
from app.canonical import sha256_hex
from app.db import SessionDep
from app.deps import REQUIRE_PURPOSE, RawBody, SettingsDep
from app.errors import COMMON_PROBLEMS, NotFound, problem_responses
from app.idempotency.service import parse_key
from app.incidents import repository, service
from app.incidents.schemas import Incident, IncidentRecord, IntakeResponse, StoredPerson

router = APIRouter(prefix="/v1", tags=["incidents"])

IdempotencyKeyHeader = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        description="Replay protection for retries: the same key with the same body returns "
        "the original result; with a different body, 422. Keys are kept for at least "
        "7 days (`TRIAGE_IDEMPOTENCY_RETENTION_DAYS`).",
    ),
]


@router.post(
    "/incidents",
    status_code=201,
    response_model=IntakeResponse,
    operation_id="create_incident",
    summary="Submit a domestic-abuse incident",
    responses={
        200: {"description": "Identical replay: the original result", "model": IntakeResponse},
        **problem_responses(409, *COMMON_PROBLEMS),
    },
)
def create_incident(
    incident: Incident,
    raw: RawBody,
    response: Response,
    session: SessionDep,
    settings: SettingsDep,
    principal: Annotated[Principal, Depends(require_roles("submitter"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, object]:
    key = parse_key(idempotency_key)
    # Identical means the same JSON document, whatever the key order or whitespace.
    fingerprint = sha256_hex(json.loads(raw))
    kwargs = {
        "principal": principal,
        "incident": incident,
        "raw_body": raw,
        "fingerprint": fingerprint,
        "idempotency_key": key,
        "settings": settings,
    }
    try:
        with session.begin_nested():
            result = service.intake(session, **kwargs)  # type: ignore[arg-type]
    except IntegrityError:
        # A concurrent identical submission won the race for the unique source
        # reference (or key); what it stored is now visible: answer as a replay.
        result = service.intake(session, **kwargs)  # type: ignore[arg-type]
    response.status_code = result.status_code
    response.headers["Location"] = result.location
    if result.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    return result.body


@router.get(
    "/incidents/{incident_id}",
    response_model=IncidentRecord,
    operation_id="get_incident",
    summary="Read a stored incident",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def get_incident(
    incident_id: uuid.UUID,
    session: SessionDep,
    principal: Annotated[
        Principal, Depends(require_roles("submitter", "triage", "agency", "auditor"))
    ],
) -> IncidentRecord:
    row = repository.get(session, incident_id)
    if row is None or not service.may_read(principal, row):
        raise NotFound("No incident with this id is visible to you.")
    latest = repository.latest_submission(session, row.id)
    return IncidentRecord(
        id=str(row.id),
        version=row.version,
        received_at=row.received_at,
        updated_at=row.updated_at,
        review_due_at=row.review_due_at,
        erased=row.erased_at is not None,
        persons=[
            StoredPerson(ref=p.ref, role=p.role, person_id=str(p.person_id)) for p in row.persons
        ],
        incident=latest.body if latest is not None else None,
    )
