"""Auditors' access to the statutory log: filtered listing, JSON Lines export, verification.

Reading the log is itself an auditable act: every call appends a ``consult`` event on
record type ``audit`` (with the filter used and how much was returned).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from app.audit.chain import event_as_json, head, pending_status, seal_all, verify
from app.audit.queries import EventFilter, iter_event_json, list_events, read_snapshot
from app.audit.record import record
from app.auth.deps import REQUIRE_PURPOSE
from app.auth.policy import authorize
from app.auth.principal import Principal
from app.contract.bounds import MAX_SEQ, BoundedTime
from app.db import Database, DatabaseDep
from app.errors import COMMON_PROBLEMS, problem_responses
from app.requests import StrictJsonRoute

router = APIRouter(prefix="/v1/audit", tags=["audit"], route_class=StrictJsonRoute)


def seal(db: Database) -> None:
    """Chain every pending read event before the log is read, so that an auditor sees
    every committed event (app/audit/models.py ``AuditPendingEvent``)."""
    with db.unit() as session:
        seal_all(session)


Operation = Literal["collect", "alter", "consult", "disclose", "combine", "erase"]


class AuditEventOut(BaseModel):
    seq: int
    id: str
    occurred_at: str
    principal_id: str
    role: str
    agency: str | None
    operation: str
    record_type: str
    record_ids: list[str]
    person_ids: list[str]
    purpose: str | None
    recipients: list[str]
    request_id: str | None
    route: str | None
    digest: str = Field(description="SHA-256 of what was returned or changed (never the data).")
    detail: dict[str, Any]
    prev_hash: str
    hash: str


class AuditPage(BaseModel):
    events: list[AuditEventOut]
    next_cursor: int | None = Field(
        description="Pass as `after` for the next page; absent on the last page."
    )


class VerifyOut(BaseModel):
    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    reason: str | None = None
    pending_events: int = Field(
        default=0,
        description="Read events committed but not yet chained (PostgreSQL; the sealer "
        "chains them within about a second). Sealed before the walk, so normally 0.",
    )


AuditorDep = Annotated[Principal, Depends(authorize("audit.read"))]


class Filters:
    def __init__(
        self,
        record: Annotated[str | None, Query(max_length=64, description="A record id.")] = None,
        person: Annotated[str | None, Query(max_length=64, description="A person id.")] = None,
        actor: Annotated[str | None, Query(max_length=200, description="A principal id.")] = None,
        operation: Operation | None = None,
        from_: Annotated[BoundedTime | None, Query(alias="from")] = None,
        to: BoundedTime | None = None,
    ) -> None:
        self.where = EventFilter(
            record=record,
            person=person,
            principal_id=actor,
            operation=operation,
            occurred_from=from_,
            occurred_to=to,
        )

    def describe(self) -> dict[str, Any]:
        w = self.where
        return {
            k: (v.isoformat() if isinstance(v, datetime) else v)
            for k, v in {
                "record": w.record,
                "person": w.person,
                "actor": w.principal_id,
                "operation": w.operation,
                "from": w.occurred_from,
                "to": w.occurred_to,
            }.items()
            if v is not None
        }


@router.get(
    "/events",
    response_model=AuditPage,
    operation_id="list_audit_events",
    summary="Audit events, filtered, in chain order (cursor pagination)",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def list_audit_events(
    request: Request,
    db: DatabaseDep,
    principal: AuditorDep,
    filters: Annotated[Filters, Depends()],
    after: Annotated[int, Query(ge=0, le=MAX_SEQ, description="Cursor: the last `seq` seen.")] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AuditPage:
    seal(db)
    with db.unit() as session:
        rows = list_events(session, filters.where, after_seq=after, limit=limit + 1)
        page = [AuditEventOut(**event_as_json(r)) for r in rows[:limit]]
        next_cursor = page[-1].seq if len(rows) > limit and page else None
        body = AuditPage(events=page, next_cursor=next_cursor)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="audit",
            record_ids=[e.id for e in page],
            payload=body.model_dump(mode="json"),
            detail={"filter": json.dumps(filters.describe(), sort_keys=True), "count": len(page)},
            principal=principal,
        )
        return body


@router.get(
    "/export",
    operation_id="export_audit_events",
    summary="Every matching event as JSON Lines (for an Information Commissioner request)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/x-ndjson": {}}, "description": "One event per line."},
        **problem_responses(*COMMON_PROBLEMS),
    },
    dependencies=[REQUIRE_PURPOSE],
)
def export_audit_events(
    request: Request,
    db: DatabaseDep,
    principal: AuditorDep,
    filters: Annotated[Filters, Depends()],
) -> StreamingResponse:
    seal(db)
    with db.unit() as session:
        # The export covers the chain as it stands now; it is logged before it streams.
        up_to_seq, up_to_hash = head(session)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="audit",
            record_ids=[],
            payload={"filter": filters.describe(), "up_to_seq": up_to_seq, "head": up_to_hash},
            detail={"filter": json.dumps(filters.describe(), sort_keys=True), "export": True},
            principal=principal,
        )
        engine = db.engine
        where = filters.where

        def lines() -> Iterator[bytes]:
            with read_snapshot(engine) as conn:
                for event in iter_event_json(conn, where, up_to_seq=up_to_seq):
                    yield json.dumps(event, sort_keys=True).encode() + b"\n"

        return StreamingResponse(lines(), media_type="application/x-ndjson")


@router.get(
    "/verify",
    response_model=VerifyOut,
    operation_id="verify_audit_chain",
    summary="Verify the whole hash chain and name the first broken link",
    responses=problem_responses(*COMMON_PROBLEMS),
)
def verify_audit_chain(
    request: Request,
    db: DatabaseDep,
    principal: AuditorDep,
    anchor: Annotated[
        str | None,
        Query(
            pattern=r"^[0-9]{1,18}:[0-9a-f]{64}$",
            description="`SEQ:HASH` printed earlier by `triage audit anchor` and kept "
            "outside the database: also checks that this event is still there unchanged.",
        ),
    ] = None,
) -> VerifyOut:
    anchor_pair = None
    if anchor is not None:
        seq, digest = anchor.split(":")
        anchor_pair = (int(seq), digest)
    seal(db)
    # The walk reads a snapshot outside any unit of work: on SQLite a writing unit holds
    # the write lock, which must not stay held while a million events are walked.
    with read_snapshot(db.engine) as conn:
        result = verify(conn, anchor=anchor_pair)
        pending = pending_status(conn)
    out = VerifyOut(**result.__dict__, pending_events=pending.count)
    with db.unit() as session:
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="audit",
            record_ids=[],
            payload=out.model_dump(mode="json"),
            detail={"verify": True, "ok": int(out.ok), "events_checked": out.events_checked},
            principal=principal,
        )
        return out
