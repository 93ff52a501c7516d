"""HTTP routes for incidents: intake, revision, judgement, and reading one incident.

The writes go through ``run_write`` (replay protection and audit, once for every write)
into the orchestrator (``app.intake.orchestrator``).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.audit.record import AuditRecord, record
from app.auth.deps import REQUIRE_PURPOSE, RawBody
from app.auth.policy import (
    agency_keeps_person,
    agency_view,
    authorize,
    flag_in_scope,
    flag_scope,
)
from app.auth.principal import Principal
from app.contract.bounds import BoundedDate
from app.contract.incident import Incident, IncidentRevision
from app.db import DatabaseDep, utcnow
from app.errors import COMMON_PROBLEMS, Gone, problem_responses
from app.flags import repository as flag_repository
from app.flags.schemas import FlagOut
from app.idempotency.writes import (
    REPLAYED_HEADER,
    WriteRequestDep,
    WriteResult,
    run_write,
)
from app.incidents import models, repository, service
from app.intake import orchestrator
from app.intake.context import ScoringContext
from app.intake.orchestrator import IntakeResult
from app.intake.responses import IncidentRecord, IntakeResponse, StoredPerson
from app.notify import repository as notify_repository
from app.people import search
from app.people.schemas import IncidentSearchPage
from app.requests import StrictJsonRoute
from app.responses import json_response
from app.scoring.schemas import JudgementIn

router = APIRouter(prefix="/v1", tags=["incidents"], route_class=StrictJsonRoute)


def _written(
    result: IntakeResult, *, operation: str, detail: dict[str, int | str], replay_header: bool
) -> WriteResult:
    headers = {"Location": result.location}
    if result.replayed and replay_header:
        headers[REPLAYED_HEADER] = "true"
    return WriteResult(
        body=result.body,
        status_code=result.status_code,
        headers=headers,
        incident_id=result.incident_id,
        entries=[result.pattern_audit] if result.pattern_audit is not None else [],
        audit=[
            AuditRecord(
                # A replay hands stored personal data back: that is a consultation.
                operation="consult" if result.replayed else operation,  # type: ignore[arg-type]
                record_type="incident",
                record_ids=[result.incident_id],
                person_ids=result.person_ids,
                payload=result.body,
                detail=detail,
            ),
            # Every automatic link joins this incident's person to what is known of them
            # from elsewhere: a combination, logged with the rule and its basis (schemes
            # and counts, never a value).
            *(
                AuditRecord(
                    operation="combine",
                    record_type="person",
                    record_ids=[result.incident_id, link.person_id, link.survivor_id],
                    person_ids=[link.survivor_id],
                    payload={"rule": link.rule, "basis": link.basis},
                    detail={"action": "link", "rule": link.rule, "position": link.position},
                )
                for link in result.links
            ),
        ],
    )


def _run_with_retry(
    request: Request,
    db: DatabaseDep,
    write: WriteRequestDep,
    work: Callable[[Session], WriteResult],
) -> Response:
    context: ScoringContext = request.app.state.scoring
    context.ensure_snapshots(db)
    try:
        return run_write(request, db, write, work)
    except IntegrityError:
        # A concurrent request stored the same incident first (the locks make this rare):
        # run again, and what it stored answers as a replay or a conflict.
        return run_write(request, db, write, work)


@router.post(
    "/incidents",
    status_code=201,
    response_model=IntakeResponse,
    operation_id="create_incident",
    summary="Submit a domestic-abuse incident",
    description="Rules beyond the schema (422, naming the location): every person's `ref` "
    "is unique; `relationship.victim` and `relationship.perpetrator` name persons of the "
    "list with those roles, and there is at most one of each; child details and `unborn` "
    "only on children (an unborn child has an `expected_date`, not a `date_of_birth`); a "
    "date of birth is not later than tomorrow; `reported_at` is not before `occurred_at`; "
    "a professional judgement has a rationale; checklist answers and comments are keyed by "
    "the instrument's item ids (`GET /v1/checklists`). The same source reference with the "
    "same body replays the original result (200); with another body, 409. "
    "`Idempotency-Key` replays too (200).",
    responses={
        200: {"description": "Identical replay: the original result", "model": IntakeResponse},
        **problem_responses(409, *COMMON_PROBLEMS),
    },
)
def create_incident(
    request: Request,
    incident: Incident,
    raw: RawBody,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("incident.create"))],
    write: WriteRequestDep,
) -> Response:
    context: ScoringContext = request.app.state.scoring

    def work(session: Session) -> WriteResult:
        result = orchestrator.submit(
            session,
            context,
            principal=principal,
            incident=incident,
            raw_body=raw,
            fingerprint=write.fingerprint,
        )
        return _written(
            result,
            operation="collect",
            detail={"replayed": int(result.replayed), "status": result.status_code},
            replay_header=True,
        )

    return _run_with_retry(request, db, write, work)


SEARCH_DEFAULT_LIMIT = 20
SEARCH_MAX_LIMIT = 100
CODE_PATTERN = r"^[A-Za-z0-9._:/-]{1,64}$"  # a source system or reference (the contract's)

SourceReferenceQuery = Annotated[
    str | None,
    Query(description="The source system's reference of the incident.", pattern=CODE_PATTERN),
]
SourceSystemQuery = Annotated[
    str | None,
    Query(description="With `source_reference`: only this source system.", pattern=CODE_PATTERN),
]
PncQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=64,
        description="A PNC id, as written anywhere (`94/118822K`, `1994/0118822K`): normalised "
        "as linking normalises it.",
    ),
]
NameQuery = Annotated[
    str | None,
    Query(
        min_length=1,
        max_length=401,
        description="Full name, given name(s) then family name, with `date_of_birth` "
        "(required with it). Matched on the name-and-date-of-birth key linking uses: case, "
        "accents, spaces and punctuation ignored, every split into given and family names "
        "tried. 2 to 10 parts.",
    ),
]
DateOfBirthQuery = Annotated[BoundedDate | None, Query(description="YYYY-MM-DD; only with `name`.")]


@router.get(
    "/incidents",
    response_model=IncidentSearchPage,
    operation_id="search_incidents",
    summary="Find incidents by source reference, PNC id, or name and date of birth",
    description="One criterion per search: `source_reference` (optionally with "
    "`source_system`), `pnc`, or `name` with `date_of_birth`; none, more than one, a name "
    "without a date of birth or a date of birth without a name is a 400. A PNC id or a name "
    "finds the person (with every record merged into them) and their incidents. Only live "
    "incidents in your scope are found (triage: its areas; auditor: all); an erased "
    "incident is found by no search. Newest first (by when the incident occurred); `cursor` "
    "is opaque: only a `next_cursor` of the same search is valid (400 otherwise). Audited as "
    "a consultation of the incidents returned (also when none is), with the purpose and "
    "the kind of criterion, never its value.",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def search_incidents(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("incident.search"))],
    source_reference: SourceReferenceQuery = None,
    source_system: SourceSystemQuery = None,
    pnc: PncQuery = None,
    name: NameQuery = None,
    date_of_birth: DateOfBirthQuery = None,
    limit: Annotated[
        int, Query(ge=1, le=SEARCH_MAX_LIMIT, description="Page size (at most 100).")
    ] = SEARCH_DEFAULT_LIMIT,
    cursor: Annotated[
        str | None,
        Query(max_length=500, description="`next_cursor` of the previous page (opaque)."),
    ] = None,
) -> Response:
    found = search.criteria(
        source_reference=source_reference,
        source_system=source_system,
        pnc=pnc,
        name=name,
        date_of_birth=date_of_birth,
    )
    with db.unit() as session:
        out = search.search_incidents(session, principal, found, cursor=cursor, limit=limit)
        body = out.page.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="incident",
            record_ids=out.incident_ids,
            person_ids=out.person_ids,
            payload=body,
            # The kind of criterion and the count: never the value searched for.
            detail={"search": found.kind, "count": len(out.incident_ids)},
            principal=principal,
        )
        return json_response(body)


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
) -> Response:
    with db.unit() as session:
        scope = flag_scope(principal)

        def subjects_of(row_id: uuid.UUID) -> set[str]:
            return flag_repository.agency_flag_subjects(
                session, row_id, agency=principal.agency, school_urns=scope.school_urns
            )

        row = service.visible_incident(session, principal, incident_id, agency_subjects=subjects_of)
        latest = repository.latest_submission(session, row.id)
        body = latest.body if latest is not None else None
        persons = list(row.persons)
        flags = flag_repository.flags_of_incident(session, row.id)
        if principal.role == "agency":
            # Only what the agency needs: its own flags and the people the view keeps (the
            # flag subjects alone once the body is erased).
            flags = [
                f
                for f in flags
                if flag_in_scope(principal, agency=f.agency, area=f.area, school_urn=f.school_urn)
            ]
            subjects = subjects_of(row.id)
            agency = str(principal.agency)
            if body is not None:
                body = agency_view(body, agency, subjects)
                kept = {p["ref"] for p in body["persons"]}
            else:  # erased: the flag subjects at most, as the view would keep them
                kept = {
                    p.ref
                    for p in persons
                    if p.ref in subjects
                    and agency_keeps_person(agency, ref=p.ref, role=p.role, flag_subjects=subjects)
                }
            persons = [p for p in persons if p.ref in kept]
        now = utcnow()
        notified = notify_repository.status_of_flags(session, [f.id for f in flags])
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
            flags=[FlagOut.of(f, now, notified) for f in flags],
        )
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="incident",
            record_ids=[row.id],
            person_ids=[p.person_id for p in persons],
            payload=body,
            principal=principal,
        )
        return json_response(body)


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
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("incident.revise"))],
    write: WriteRequestDep,
) -> Response:
    context: ScoringContext = request.app.state.scoring

    def work(session: Session) -> WriteResult:
        row = _incident_in_scope_or_404(session, principal, incident_id)
        result = orchestrator.revise(
            session,
            context,
            principal=principal,
            row=row,
            incident=incident,
            raw_body=raw,
            fingerprint=write.fingerprint,
        )
        return _written(
            result,
            operation="alter",
            detail={"revision": int(result.body["version"]), "replayed": int(result.replayed)},
            replay_header=False,
        )

    return _run_with_retry(request, db, write, work)


@router.post(
    "/incidents/{incident_id}/judgements",
    status_code=201,
    response_model=IntakeResponse,
    operation_id="record_judgement",
    summary="Record a professional judgement (raises, never lowers); a new assessment version",
    description="A judgement raises a level and never lowers it: one below the current "
    "level is recorded, and the explanation says it was not applied. The rationale is "
    "required (422 without it). Without `subject_ref` it is of the victim (`standard`, "
    "`medium`, `high`); with a child's `subject_ref` (rules v2) it is of that child, on the "
    "child ladder (`moderate` to `severe`), and shows as the child's "
    "`professional_judgement` trigger.",
    responses=problem_responses(410, *COMMON_PROBLEMS),
)
def record_judgement(
    request: Request,
    incident_id: uuid.UUID,
    judgement: JudgementIn,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("judgement.create"))],
    write: WriteRequestDep,
) -> Response:
    context: ScoringContext = request.app.state.scoring

    def work(session: Session) -> WriteResult:
        row = _incident_in_scope_or_404(session, principal, incident_id)
        result = orchestrator.judge(
            session,
            context,
            principal=principal,
            row=row,
            level=judgement.level,
            rationale=judgement.rationale,
            subject_ref=judgement.subject_ref,
        )
        detail: dict[str, Any] = {"judgement": judgement.level}
        if judgement.subject_ref is not None:
            detail["subject"] = "child"
        return _written(result, operation="alter", detail=detail, replay_header=False)

    return _run_with_retry(request, db, write, work)
