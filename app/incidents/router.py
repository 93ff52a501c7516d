"""HTTP routes for incidents."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Header, Request, Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.record import record
from app.auth.policy import agency_flag_subjects, agency_view, authorize
from app.auth.principal import Principal
from app.canonical import sha256_hex
from app.db import DatabaseDep, utcnow
from app.deps import REQUIRE_PURPOSE, RawBody
from app.errors import COMMON_PROBLEMS, Gone, problem_responses
from app.flags.schemas import FlagOut
from app.idempotency import service as idempotency
from app.idempotency.service import parse_key
from app.incidents import models, repository, service
from app.incidents.responses import IncidentRecord, IntakeResponse, StoredPerson
from app.incidents.schemas import Incident, IncidentRevision
from app.scoring.schemas import JudgementIn

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
    request: Request,
    incident: Incident,
    raw: RawBody,
    response: Response,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("incident.create"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, object]:
    with db.unit() as session:
        key = parse_key(idempotency_key)
        # Identical means the same JSON document, whatever the key order or whitespace.
        fingerprint = sha256_hex(json.loads(raw))
        kwargs = {
            "principal": principal,
            "incident": incident,
            "raw_body": raw,
            "fingerprint": fingerprint,
            "idempotency_key": key,
            "context": request.app.state.scoring,
        }
        try:
            with session.begin_nested():
                result = service.intake(session, **kwargs)
        except IntegrityError:
            # A concurrent identical submission won the race for the unique source
            # reference (or key); what it stored is now visible: answer as a replay.
            result = service.intake(session, **kwargs)
        record(
            request,
            session,
            # A replay hands stored personal data back: that is a consultation.
            operation="consult" if result.replayed else "collect",
            record_type="incident",
            record_ids=[result.incident_id],
            person_ids=service.person_ids(session, result.incident_id),
            payload=result.body,
            detail={"replayed": int(result.replayed), "status": result.status_code},
            principal=principal,
        )
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
    request: Request,
    incident_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("incident.read"))],
) -> IncidentRecord:
    with db.unit() as session:
        row = service.visible_incident(session, principal, incident_id)
        latest = repository.latest_submission(session, row.id)
        body = latest.body if latest is not None else None
        persons = list(row.persons)
        flags = repository.flags_of_incident(session, row.id)
        if principal.role == "agency":
            # Only what the agency needs: its own flags and the people the view keeps (the
            # flag subjects alone once the body is erased).
            flags = [f for f in flags if f.agency == principal.agency]
            subjects = agency_flag_subjects(session, principal, row.id)
            kept = subjects
            if body is not None and principal.agency is not None:
                body = agency_view(body, principal.agency, subjects)
                kept = {p["ref"] for p in body["persons"]}
            persons = [p for p in persons if p.ref in kept]
        now = utcnow()
        out = IncidentRecord(
            id=str(row.id),
            version=row.version,
            received_at=row.received_at,
            updated_at=row.updated_at,
            review_due_at=row.review_due_at,
            erased=row.erased_at is not None,
            persons=[
                StoredPerson(ref=p.ref, role=p.role, person_id=str(p.person_id)) for p in persons
            ],
            incident=body,
            flags=[FlagOut.of(f, now) for f in flags],
        )
        record(
            request,
            session,
            operation="consult",
            record_type="incident",
            record_ids=[row.id],
            person_ids=[p.person_id for p in persons],
            payload=out.model_dump(mode="json"),
            principal=principal,
        )
        return out


def _incident_in_scope_or_404(
    session: Session, principal: Principal, incident_id: uuid.UUID
) -> models.Incident:
    row = service.visible_incident(session, principal, incident_id)
    if row.erased_at is not None:
        raise Gone("This incident's personal data was erased.")
    return row


@router.post(
    "/incidents/{incident_id}/revisions",
    status_code=201,
    response_model=IntakeResponse,
    operation_id="revise_incident",
    summary="Submit amended or completed data; re-scored as a new assessment version",
    responses={
        200: {
            "description": "Identical to the latest revision: its result",
            "model": IntakeResponse,
        },
        **problem_responses(410, *COMMON_PROBLEMS),
    },
)
def revise_incident(
    request: Request,
    incident_id: uuid.UUID,
    incident: IncidentRevision,
    raw: RawBody,
    response: Response,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("incident.revise"))],
    idempotency_key: IdempotencyKeyHeader = None,
) -> dict[str, object]:
    with db.unit() as session:
        row = _incident_in_scope_or_404(session, principal, incident_id)
        key = parse_key(idempotency_key)
        fingerprint = sha256_hex(json.loads(raw))
        route = f"POST /v1/incidents/{incident_id}/revisions"
        replay = (
            idempotency.lookup(
                session, principal_id=principal.id, key=key, route=route, fingerprint=fingerprint
            )
            if key
            else None
        )
        if replay is not None and replay.body is not None:
            result = service.IntakeResult(200, replay.body, replay.location or "", row.id, True)
        else:
            result = service.revise(
                session,
                principal=principal,
                row=row,
                incident=incident,
                raw_body=raw,
                fingerprint=fingerprint,
                context=request.app.state.scoring,
            )
            if key and not result.replayed:
                idempotency.remember(
                    session,
                    principal_id=principal.id,
                    key=key,
                    route=route,
                    fingerprint=fingerprint,
                    status_code=result.status_code,
                    body=result.body,
                    location=result.location,
                    retention_days=request.app.state.settings.idempotency_retention_days,
                )
        record(
            request,
            session,
            operation="consult" if result.replayed else "alter",
            record_type="incident",
            record_ids=[row.id],
            person_ids=service.person_ids(session, row.id),
            payload=result.body,
            detail={"revision": row.version, "replayed": int(result.replayed)},
            principal=principal,
        )
        response.status_code = result.status_code
        response.headers["Location"] = result.location
        return result.body


@router.post(
    "/incidents/{incident_id}/judgements",
    status_code=201,
    response_model=IntakeResponse,
    operation_id="record_judgement",
    summary="Record a professional judgement (raises, never lowers); a new assessment version",
    responses=problem_responses(410, *COMMON_PROBLEMS),
)
def record_judgement(
    request: Request,
    incident_id: uuid.UUID,
    judgement: JudgementIn,
    response: Response,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("judgement.create"))],
) -> dict[str, object]:
    with db.unit() as session:
        row = _incident_in_scope_or_404(session, principal, incident_id)
        result = service.judge(
            session,
            principal=principal,
            row=row,
            level=judgement.level,
            rationale=judgement.rationale,
            context=request.app.state.scoring,
        )
        record(
            request,
            session,
            operation="alter",
            record_type="incident",
            record_ids=[row.id],
            person_ids=service.person_ids(session, row.id),
            payload=result.body,
            detail={"judgement": judgement.level},
            principal=principal,
        )
        response.headers["Location"] = result.location
        return result.body
