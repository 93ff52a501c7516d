"""Admin routes: retention reviews due, erasure, API keys. No case data is returned."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.admin.service import erase_incident
from app.audit.record import AuditRecord
from app.auth.keys import MAX_KEY_DAYS, KeySpecError, create_key, key_row, list_keys, revoke_key
from app.auth.policy import authorize
from app.auth.principal import MAX_SCHOOLS, SCHOOL_URN_PATTERN, Agency, Principal, Role
from app.contract.bounds import BoundedTime, WholeNumber
from app.db import DatabaseDep, utcnow
from app.errors import (
    COMMON_PROBLEMS,
    BadRequest,
    Conflict,
    NotFound,
    Unprocessable,
    problem_responses,
)
from app.idempotency.writes import WriteRequestDep, WriteResult, run_write
from app.incidents import repository as incident_repository
from app.requests import StrictJsonRoute

router = APIRouter(prefix="/v1", tags=["admin"], route_class=StrictJsonRoute)

AdminErase = Annotated[Principal, Depends(authorize("admin.erase"))]
ADMIN_KEYS = Depends(authorize("admin.keys"))


class ErasureRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=3, max_length=500, description="Why the data is erased.")


class ErasureOut(BaseModel):
    incident_id: str
    erased_at: AwareDatetime
    persons_erased: int = Field(description="Persons in no other live incident, erased too.")


class ReviewDue(BaseModel):
    incident_id: str
    area: str
    review_due_at: AwareDatetime
    received_at: AwareDatetime


class ReviewsDuePage(BaseModel):
    items: list[ReviewDue]
    next_cursor: str | None = None


class KeyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Role
    agency: Agency | None = None
    areas: list[Annotated[str, Field(pattern=r"^[A-Za-z0-9._:*-]{1,64}$")]] = Field(
        default_factory=list, max_length=50
    )
    source_system: str | None = Field(default=None, pattern=r"^[A-Za-z0-9._:/-]{1,64}$")
    schools: list[Annotated[str, Field(pattern=SCHOOL_URN_PATTERN)]] = Field(
        default_factory=list,
        max_length=MAX_SCHOOLS,
        description="For agency `school`, required: the URNs (DfE Unique Reference Numbers, "
        "6 to 8 digits) of the schools the key serves; it sees only flags about their "
        "pupils. Refused on any other key.",
    )
    label: str = Field(default="", max_length=100)
    expires_in_days: WholeNumber | None = Field(default=None, ge=1, le=MAX_KEY_DAYS)


class KeyOut(BaseModel):
    id: str
    prefix: str
    role: str
    agency: str | None
    areas: list[str]
    source_system: str | None
    schools: list[str] = Field(
        description="A school key's schools (URNs). A school key without any (made before "
        "keys named their schools) sees nothing: revoke it and make one that names them."
    )
    label: str
    created_at: AwareDatetime
    expires_at: AwareDatetime | None
    revoked_at: AwareDatetime | None


class IssuedKeyOut(KeyOut):
    secret: str = Field(description="Shown once; only its SHA-256 is stored.")


@router.post(
    "/incidents/{incident_id}/erase",
    response_model=ErasureOut,
    operation_id="erase_incident",
    summary="Erase an incident's personal data, keeping a tombstone and the audit trail",
    tags=["admin"],
    responses=problem_responses(409, *COMMON_PROBLEMS),
)
def erase(
    request: Request,
    incident_id: uuid.UUID,
    body: ErasureRequest,
    db: DatabaseDep,
    principal: AdminErase,
    write: WriteRequestDep,
) -> Response:
    def work(session: Session) -> WriteResult:
        incident = incident_repository.get(session, incident_id)
        if incident is None:
            raise NotFound("No such incident.")
        if incident.erased_at is not None:
            raise Conflict("This incident has already been erased.")
        person_ids = [p.person_id for p in incident.persons]
        latest = incident_repository.latest_submission(session, incident.id)
        now = utcnow()
        erased_persons = erase_incident(
            session, incident, by=principal.id, reason=body.reason, now=now
        )
        out = ErasureOut(
            incident_id=str(incident.id), erased_at=now, persons_erased=len(erased_persons)
        )
        return WriteResult(
            body=out.model_dump(mode="json"),
            audit=[
                AuditRecord(
                    operation="erase",
                    record_type="incident",
                    record_ids=[incident.id],
                    person_ids=person_ids,
                    # The digest of what was erased, never the data itself.
                    payload={
                        "latest_body_sha256": latest.body_sha256 if latest else None,
                        "persons_erased": sorted(map(str, erased_persons)),
                    },
                    detail={"persons_erased": len(erased_persons)},
                )
            ],
        )

    return run_write(request, db, write, work)


@router.get(
    "/admin/reviews-due",
    response_model=ReviewsDuePage,
    operation_id="list_reviews_due",
    summary="Incidents whose retention review date has passed (DPA 2018 s.39)",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[Depends(authorize("admin.reviews"))],
)
def reviews_due(
    db: DatabaseDep,
    before: Annotated[BoundedTime | None, Query(description="Default: now.")] = None,
    after: Annotated[str | None, Query(max_length=80, description="Cursor.")] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> ReviewsDuePage:
    with db.unit(read_only=True) as session:
        rows = incident_repository.reviews_due(
            session,
            before=before or utcnow(),
            after=_parse_cursor(after) if after else None,
            limit=limit + 1,
        )
        items = [
            ReviewDue(
                incident_id=str(r.id),
                area=r.area,
                review_due_at=r.review_due_at,  # type: ignore[arg-type]
                received_at=r.received_at,
            )
            for r in rows[:limit]
        ]
        cursor = None
        if len(rows) > limit:
            last = rows[limit - 1]
            if last.review_due_at is not None:  # always set: the query filters on it
                cursor = _cursor(last.review_due_at, last.id)
        return ReviewsDuePage(items=items, next_cursor=cursor)


# The cursor is the last item's (review_due_at, id) in characters that need no escaping
# in a query string (an ISO offset's "+" would arrive as a space if pasted unencoded).
_CURSOR = re.compile(r"^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z)_([0-9a-f-]{36})$")


INVALID_CURSOR = "The cursor is not valid; start again without one."


def _cursor(when: datetime, last_id: uuid.UUID) -> str:
    return f"{when.astimezone(UTC).strftime('%Y-%m-%dT%H:%M:%S.%fZ')}_{last_id}"


def _parse_cursor(text: str) -> tuple[datetime, uuid.UUID]:
    match = _CURSOR.match(text)
    if match is None:
        raise BadRequest(INVALID_CURSOR)
    try:
        return datetime.fromisoformat(match.group(1)), uuid.UUID(match.group(2))
    except ValueError as exc:
        raise BadRequest(INVALID_CURSOR) from exc


def _key_out(row: object) -> KeyOut:
    return KeyOut.model_validate(
        {
            **{f: getattr(row, f) for f in KeyOut.model_fields if f != "id"},
            "id": str(row.id),  # type: ignore[attr-defined]
            "schools": getattr(row, "schools", None) or [],
        }
    )


@router.get(
    "/admin/keys",
    response_model=list[KeyOut],
    operation_id="list_api_keys",
    summary="API keys (never their secrets)",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[ADMIN_KEYS],
)
def get_keys(db: DatabaseDep) -> list[KeyOut]:
    with db.unit() as session:
        return [_key_out(k) for k in list_keys(session)]


@router.post(
    "/admin/keys",
    status_code=201,
    response_model=IssuedKeyOut,
    operation_id="create_api_key",
    summary="Create an API key (the secret is returned once)",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[ADMIN_KEYS],
)
def post_key(request: Request, body: KeyIn, db: DatabaseDep, write: WriteRequestDep) -> Response:
    def work(session: Session) -> WriteResult:
        try:
            issued = create_key(
                session,
                role=body.role,
                agency=body.agency,
                areas=body.areas,
                source_system=body.source_system,
                schools=body.schools,
                label=body.label,
                expires_in_days=body.expires_in_days,
            )
        except KeySpecError as exc:
            raise Unprocessable(str(exc)) from exc
        row = key_row(session, issued.id)
        if row is None:  # pragma: no cover - flushed just above
            raise NotFound("No such key.")
        out = IssuedKeyOut(**_key_out(row).model_dump(), secret=issued.secret)
        return WriteResult(
            body=out.model_dump(mode="json"),
            status_code=201,
            # The secret is shown once: a retry makes a new key rather than store this one.
            replayable=False,
            audit=[
                AuditRecord(
                    operation="collect",
                    record_type="key",
                    record_ids=[issued.id],
                    payload={"id": str(issued.id), "role": issued.role},
                )
            ],
        )

    return run_write(request, db, write, work)


@router.delete(
    "/admin/keys/{key_id}",
    status_code=204,
    operation_id="revoke_api_key",
    summary="Revoke an API key",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[ADMIN_KEYS],
)
def delete_key(
    request: Request,
    key_id: uuid.UUID,
    db: DatabaseDep,
    write: WriteRequestDep,
) -> Response:
    def work(session: Session) -> WriteResult:
        if not revoke_key(session, key_id):
            raise NotFound("No such active key.")
        return WriteResult(
            body=None,
            status_code=204,
            audit=[
                AuditRecord(
                    operation="alter",
                    record_type="key",
                    record_ids=[key_id],
                    payload={"revoked": str(key_id)},
                )
            ],
        )

    response = run_write(request, db, write, work)
    # After the commit: no request of this process accepts the key from now on.
    request.app.state.key_cache.forget_all()
    return response
