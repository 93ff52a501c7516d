"""HTTP routes for persons: who they are, their chronology, and corrections to linking."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from sqlalchemy.orm import Session

from app.audit.record import AuditRecord, record
from app.auth.deps import REQUIRE_PURPOSE
from app.auth.policy import authorize
from app.auth.principal import Principal
from app.contract.bounds import BoundedDate
from app.db import DatabaseDep, utcnow
from app.errors import COMMON_PROBLEMS, problem_responses
from app.idempotency.writes import WriteRequestDep, WriteResult, run_write
from app.people import search, service
from app.people.schemas import (
    MergeIn,
    MergeOut,
    PersonOut,
    PersonSearchResult,
    Timeline,
    UnmergeIn,
)
from app.requests import StrictJsonRoute
from app.responses import json_response

router = APIRouter(prefix="/v1", tags=["people"], route_class=StrictJsonRoute)


@router.get(
    "/persons",
    response_model=PersonSearchResult,
    operation_id="search_persons",
    summary="Find persons by PNC id, or name and date of birth",
    description="One criterion per search: `pnc`, or `name` with `date_of_birth`; none, "
    "both, a name without a date of birth or a date of birth without a name is a 400. A "
    "person (the survivor of any merges) is found only through a live incident in your "
    "scope (triage: its areas; auditor: all), and its roles and incident count are of "
    "those incidents. Audited as a consultation of the persons returned (also when none "
    "is), with the purpose and the kind of criterion, never its value.",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def search_persons(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("person.search"))],
    pnc: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=64,
            description="A PNC id, as written anywhere: normalised as linking normalises it.",
        ),
    ] = None,
    name: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=401,
            description="Full name, given name(s) then family name, with `date_of_birth`. "
            "Matched on the name-and-date-of-birth key linking uses: case, accents, spaces "
            "and punctuation ignored, every split into given and family names tried. 2 to "
            "10 parts.",
        ),
    ] = None,
    date_of_birth: Annotated[
        BoundedDate | None, Query(description="YYYY-MM-DD; only with `name`.")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=50, description="Persons returned (at most 50).")] = 20,
) -> Response:
    found = search.criteria(pnc=pnc, name=name, date_of_birth=date_of_birth)
    with db.unit() as session:
        out = search.search_persons(session, principal, found, limit=limit)
        body = out.result.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="person",
            record_ids=out.person_ids,
            person_ids=out.records,
            payload=body,
            # The kind of criterion and the count: never the value searched for.
            detail={"search": found.kind, "count": len(out.person_ids)},
            principal=principal,
        )
        return json_response(body)


@router.get(
    "/persons/{person_id}",
    response_model=PersonOut,
    operation_id="get_person",
    summary="A person across incidents: roles, counts, identifier schemes, merges",
    responses=problem_responses(410, *COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def get_person(
    request: Request,
    person_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("person.read"))],
) -> Response:
    with db.unit() as session:
        visible = service.visible_person(session, principal, person_id)
        out = service.person_view(session, visible)
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="person",
            record_ids=[visible.person.id],
            person_ids=visible.records,
            payload=body,
            principal=principal,
        )
        return json_response(body)


@router.get(
    "/persons/{person_id}/timeline",
    response_model=Timeline,
    operation_id="get_person_timeline",
    summary="Chronology: every incident the person is in, with levels, MARAC and flags",
    responses=problem_responses(410, *COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def get_person_timeline(
    request: Request,
    person_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("person.read"))],
    limit: Annotated[int, Query(ge=1, le=1000, description="Newest entries kept.")] = 200,
) -> Response:
    with db.unit() as session:
        visible = service.visible_person(session, principal, person_id)
        out = service.timeline(session, visible, limit=limit)
        shown = {
            *visible.records,
            *(v.person_id for v in out.distinct_victims),
            *(x for e in out.entries for x in (e.victim_person_id, e.perpetrator_person_id) if x),
            *(c.person_id for e in out.entries for c in e.children),
        }
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="person",
            record_ids=[visible.person.id, *(e.incident_id for e in out.entries if e.incident_id)],
            person_ids=[str(p) for p in shown],
            payload=body,
            detail={"view": "timeline", "entries": len(out.entries)},
            principal=principal,
        )
        return json_response(body)


@router.post(
    "/persons/{person_id}/merge",
    status_code=201,
    response_model=MergeOut,
    operation_id="merge_person",
    summary="Record that this person is the same as another (undo with unmerge)",
    description="`into` must be another person: merging a person into itself is a 422. "
    "Merging into the person it is already merged into answers the merge (200).",
    responses={
        200: {"description": "Already merged into that person: the merge", "model": MergeOut},
        **problem_responses(409, 410, *COMMON_PROBLEMS),
    },
)
def merge_person(
    request: Request,
    person_id: uuid.UUID,
    body: MergeIn,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("person.merge"))],
    write: WriteRequestDep,
) -> Response:
    def work(session: Session) -> WriteResult:
        result = service.merge(
            session,
            principal,
            person_id=person_id,
            into=body.into,
            reason=body.reason,
            now=utcnow(),
        )
        out = service.merge_out(result.merge).model_dump(mode="json", by_alias=True)
        if not result.created:  # already merged into that person: the merge, unchanged
            return WriteResult(body=out, status_code=200)
        return WriteResult(body=out, status_code=201, audit=[_combined(result, out, "merge")])

    return run_write(request, db, write, work)


@router.post(
    "/persons/{person_id}/unmerge",
    response_model=MergeOut,
    operation_id="unmerge_person",
    summary="Undo the merge of this record; its incidents stand apart again",
    responses=problem_responses(409, 410, *COMMON_PROBLEMS),
)
def unmerge_person(
    request: Request,
    person_id: uuid.UUID,
    body: UnmergeIn,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("person.merge"))],
    write: WriteRequestDep,
) -> Response:
    def work(session: Session) -> WriteResult:
        result = service.unmerge(
            session, principal, person_id=person_id, reason=body.reason, now=utcnow()
        )
        out = service.merge_out(result.merge).model_dump(mode="json", by_alias=True)
        return WriteResult(body=out, audit=[_combined(result, out, "unmerge")])

    return run_write(request, db, write, work)


def _combined(result: service.MergeResult, out: dict[str, Any], action: str) -> AuditRecord:
    return AuditRecord(
        operation="combine",
        record_type="person",
        record_ids=[result.merge.id, result.merge.person_id, result.merge.into_id],
        person_ids=result.person_ids,
        payload=out,
        detail={"action": action},
    )
