"""HTTP routes for information-sharing decisions about an incident.

``POST`` records a disclosure or a decision not to share (triage, in its areas). A
disclosure is logged as an audit ``disclose`` naming the recipient agency (DPA 2018
s.62(3)); a decision not to share changes the incident's record and is logged as an
``alter``. ``GET`` lists every decision about the incident (triage in its areas, auditors).
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.orm import Session

from app.audit.record import AuditRecord, record
from app.auth.deps import CAPTURE_PURPOSE, REQUIRE_PURPOSE
from app.auth.policy import authorize
from app.auth.principal import Principal
from app.db import DatabaseDep, utcnow
from app.errors import COMMON_PROBLEMS, Gone, problem_responses
from app.idempotency.writes import WriteRequestDep, WriteResult, run_write
from app.incidents.service import visible_incident
from app.requests import StrictJsonRoute
from app.responses import json_response
from app.sharing import service
from app.sharing.schemas import DisclosureIn, DisclosureList, DisclosureOut

router = APIRouter(prefix="/v1", tags=["sharing"], route_class=StrictJsonRoute)


@router.post(
    "/incidents/{incident_id}/disclosures",
    status_code=201,
    response_model=DisclosureOut,
    operation_id="record_disclosure",
    summary="Record that information was shared with an agency, or a decision not to share",
    description="Sharing needs a `lawful_basis` (consent, safeguarding, statutory_function, "
    "vital_interests, administration_of_justice) and at least one category shared; a "
    "decision not to share needs `reason_not_shared` and shares no category. Sharing on "
    "`consent` needs `consent_status: given`; a decision not to share may record that consent "
    "was sought and refused. `recipient_agency: other` needs `recipient_detail`; "
    "`subject_refs` are refs of the incident's persons; `decided_at` is not in the future "
    "(422 otherwise). `Idempotency-Key` replays the original result (200).",
    responses={
        200: {"description": "Replay of the same Idempotency-Key", "model": DisclosureOut},
        **problem_responses(410, *COMMON_PROBLEMS),
    },
    dependencies=[CAPTURE_PURPOSE],
)
def record_disclosure(
    request: Request,
    incident_id: uuid.UUID,
    body: DisclosureIn,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("disclosure.create"))],
    write: WriteRequestDep,
) -> Response:
    def work(session: Session) -> WriteResult:
        row = visible_incident(session, principal, incident_id)
        if row.erased_at is not None:
            raise Gone("This incident's personal data was erased.")
        disclosure = service.record_disclosure(
            session, row, body, principal=principal, now=utcnow()
        )
        payload = service.disclosure_out(disclosure).model_dump(mode="json", by_alias=True)
        shared = disclosure.decision == "shared"
        return WriteResult(
            body=payload,
            status_code=201,
            incident_id=row.id,
            audit=[
                AuditRecord(
                    operation="disclose" if shared else "alter",
                    record_type="incident",
                    record_ids=[row.id, disclosure.id],
                    person_ids=service.person_ids_of(row, disclosure.subject_refs),
                    payload=payload,
                    recipients=[f"agency:{disclosure.recipient_agency}"] if shared else [],
                    detail={
                        "decision": disclosure.decision,
                        "agency": disclosure.recipient_agency,
                        "lawful_basis": disclosure.lawful_basis or "",
                        "categories": ",".join(disclosure.categories_shared),
                    },
                )
            ],
        )

    return run_write(request, db, write, work)


@router.get(
    "/incidents/{incident_id}/disclosures",
    response_model=DisclosureList,
    operation_id="list_disclosures",
    summary="Every information-sharing decision about an incident",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def list_disclosures(
    request: Request,
    incident_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("disclosure.read"))],
) -> Response:
    with db.unit() as session:
        row = visible_incident(session, principal, incident_id)
        rows = service.disclosures_of(session, row.id)
        out = DisclosureList(
            incident_id=str(row.id), disclosures=[service.disclosure_out(d) for d in rows]
        )
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="disclosure",
            record_ids=[row.id, *(d.id for d in rows)],
            person_ids=service.person_ids_of(
                row, sorted({r for d in rows for r in d.subject_refs})
            ),
            payload=body,
            detail={"count": len(rows)},
            principal=principal,
        )
        return json_response(body)
