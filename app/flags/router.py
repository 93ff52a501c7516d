"""HTTP routes for working flags (``/v1/flags``) and the MASH triage queue (``/v1/queue``).

Visibility (the policy's object scope, ``app.auth.policy.flag_scope``): triage sees the
flags of its areas; an agency sees only flags addressed to its own agency in its areas, and
works only those (a school: only those about the pupils of its own schools); an auditor
reads every flag and works none. A flag outside scope is a 404.
Every read is an audit ``consult`` (an agency's is also a ``disclose`` to it); every
change an ``alter``. Notes and reasons are free text: returned to those entitled, never
logged.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header, Query, Request, Response
from sqlalchemy import Row
from sqlalchemy.orm import Session

from app.audit.record import AuditRecord, record
from app.auth.deps import CAPTURE_PURPOSE, REQUIRE_PURPOSE
from app.auth.policy import area_filter, authorize, flag_in_scope, flag_scope
from app.auth.principal import Principal
from app.contract.bounds import BoundedTime
from app.db import DatabaseDep, utcnow
from app.errors import (
    COMMON_PROBLEMS,
    BadRequest,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    problem_responses,
)
from app.flags import lifecycle, repository
from app.flags.api_schemas import (
    FlagChange,
    FlagEventOut,
    FlagHistory,
    FlagPage,
    FlagStatus,
    NoteIn,
    QueuePage,
    QueueRow,
    SubjectKind,
)
from app.flags.cursor import decode_key, encode_cursor, query_fingerprint
from app.flags.models import OPEN_STATUSES, Flag, FlagEvent
from app.flags.queue import OpenFlagMatch, queue_page
from app.flags.schemas import FlagOut, etag, flag_json
from app.flags.vocabulary import AGENCIES, Agency, FlagType
from app.idempotency.writes import WriteRequestDep, WriteResult, run_write
from app.notify import repository as notify_repository
from app.openapi import enforced
from app.requests import StrictJsonRoute
from app.responses import json_datetime, json_response

router = APIRouter(prefix="/v1", tags=["flags"], route_class=StrictJsonRoute)
queue_router = APIRouter(prefix="/v1", tags=["queue"], route_class=StrictJsonRoute)

NOT_VISIBLE = "No flag with this id is visible to you."
NOTIFICATION_PROBLEM_HELP = (
    "`true`: only open flags with a notification problem: a notification to the flag's "
    "agency failed (dead-lettered after its retries), or the notice of the flag being "
    "raised was not acknowledged by the flag's due time. `false`: closed flags and open "
    "flags without one."
)
DEFAULT_LIMIT = 50
MAX_LIMIT = 200

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size (at most 200).")]
Cursor = Annotated[
    str | None,
    Query(max_length=500, description="`next_cursor` of the previous page (opaque)."),
]
AreaQuery = Annotated[
    list[str] | None,
    Query(
        description="Only these areas (within your own). Repeat for several.",
        max_length=50,
    ),
]
# RFC 9110 §8.8.3: entity-tag = [ "W/" ] DQUOTE *etagc DQUOTE.
_ENTITY_TAG = re.compile(r'^(W/)?"[\x21\x23-\x7e\x80-\xff]*"$')
IF_MATCH_PATTERN = r'^(\*|(W/)?"[\x21\x23-\x7e]*"(\s*,\s*(W/)?"[\x21\x23-\x7e]*")*)$'
IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description="The flag's ETag as last read, compared strongly (a weak tag never "
        "matches), or `*` (any current flag). Required: missing → 428, stale → 412 with "
        "the current flag, malformed → 400.",
        max_length=1000,
        json_schema_extra=enforced(IF_MATCH_PATTERN),
    ),
]


# --------------------------------------------------------------------------- scope


def _visible_flag(session: Session, principal: Principal, flag_id: uuid.UUID) -> Flag:
    flag = repository.get_flag(session, flag_id)
    if flag is None or not flag_in_scope(
        principal, agency=flag.agency, area=flag.area, school_urn=flag.school_urn
    ):
        raise NotFound(NOT_VISIBLE)
    return flag


def _within(
    allowed: frozenset[str] | None, requested: Sequence[str] | None
) -> frozenset[str] | None:
    """The requested values within those allowed (None: no limit)."""
    if requested is None:
        return allowed
    wanted = frozenset(requested)
    return wanted if allowed is None else wanted & allowed


def _scoped_areas(principal: Principal, requested: list[str] | None) -> frozenset[str] | None:
    return _within(area_filter(principal), requested)


def _person_ids(flags: Sequence[Flag | Row[Any]]) -> list[uuid.UUID]:
    return [f.subject_person_id for f in flags if f.subject_person_id is not None]


# --------------------------------------------------------------------------- flags


@router.get(
    "/flags",
    response_model=FlagPage,
    operation_id="list_flags",
    summary="Flags in priority order, then due time (keyset pages)",
    description="Defaults to the open flags (`open`, `acknowledged`, `in_progress`). "
    "`subject` is the kind of person a flag is about; `person_id` a stored person (the "
    "same person across incidents). `due_before` is exclusive, `due_after` inclusive. "
    "`overdue=true`: open flags past their due time. Pages are stable while new flags "
    "arrive: a page starts strictly after the last row of the previous one. `cursor` is "
    "opaque: only a `next_cursor` this listing returned, with the same filters, is valid "
    "(400 otherwise).",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def list_flags(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("flag.read"))],
    status: Annotated[
        list[FlagStatus] | None, Query(description="Default: the open statuses.", max_length=5)
    ] = None,
    agency: Annotated[list[Agency] | None, Query(max_length=len(AGENCIES))] = None,
    area: AreaQuery = None,
    flag_type: Annotated[list[FlagType] | None, Query(alias="type", max_length=15)] = None,
    subject: Annotated[
        SubjectKind | None, Query(description="victim, child or perpetrator")
    ] = None,
    person_id: uuid.UUID | None = None,
    incident_id: uuid.UUID | None = None,
    due_before: BoundedTime | None = None,
    due_after: BoundedTime | None = None,
    overdue: bool | None = None,
    needs_review: bool | None = None,
    notification_problem: Annotated[
        bool | None, Query(description=NOTIFICATION_PROBLEM_HELP)
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    with db.unit() as session:
        now = utcnow()
        scope = flag_scope(principal)
        filters = repository.FlagFilters(
            statuses=tuple(sorted(set(status))) if status else OPEN_STATUSES,
            areas=_within(scope.areas, area),
            agencies=_within(scope.agencies, agency),
            school_urns=scope.school_urns,
            types=frozenset(flag_type) if flag_type else None,
            subject_kind=subject,
            person_id=person_id,
            incident_id=incident_id,
            due_before=due_before,
            due_after=due_after,
            overdue=overdue,
            needs_review=needs_review,
            notification_problem=notification_problem,
        )
        fingerprint = query_fingerprint(
            "flags",
            {k: sorted(v) if isinstance(v, frozenset) else v for k, v in vars(filters).items()},
        )
        after = decode_key(cursor, fingerprint) if cursor else None
        if filters.agencies is not None and not filters.agencies:
            rows: list[Row[Any]] = []
        else:  # (no areas or no schools in scope: no rows, from the repository)
            rows = repository.list_flags(session, filters, now=now, after=after, limit=limit + 1)
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = None
        if more:
            last = rows[-1]
            next_cursor = encode_cursor(
                fingerprint, [last.priority, last.due_at.isoformat(), str(last.id)]
            )
        notified = notify_repository.status_of_flags(session, [f.id for f in rows])
        # FlagPage as JSON, built directly (tests hold it equal to the model's dump).
        body = {
            "items": [flag_json(f, now, notified) for f in rows],
            "next_cursor": next_cursor,
            "as_of": json_datetime(now),
        }
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="flag",
            record_ids=[f.id for f in rows],
            person_ids=_person_ids(rows),
            payload=body,
            detail={"count": len(rows)},
            principal=principal,
        )
        return json_response(body)


@router.get(
    "/flags/{flag_id}",
    response_model=FlagOut,
    operation_id="get_flag",
    summary="One flag, with its ETag and its notifications' status",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def get_flag(
    request: Request,
    flag_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("flag.read"))],
) -> Response:
    with db.unit() as session:
        flag = _visible_flag(session, principal, flag_id)
        body = lifecycle.flag_out(session, flag, utcnow())
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="flag",
            record_ids=[flag.id],
            person_ids=_person_ids([flag]),
            payload=body,
            principal=principal,
        )
        return json_response(body, headers={"ETag": etag(flag)})


@router.patch(
    "/flags/{flag_id}",
    response_model=FlagOut,
    operation_id="change_flag",
    summary="Move a flag on (status, reason, assignee); requires If-Match",
    description="Transitions are forward only: open → acknowledged → in_progress → done, "
    "a step may be skipped, and any open status → not_required with a `status_reason`. "
    "done and not_required are final (409 for anything else). `If-Match` must carry the "
    "flag's current ETag: missing → 428, stale → 412 whose body has the current flag in "
    "`current`. Returns the changed flag and its new ETag.",
    responses=problem_responses(409, 412, 428, *COMMON_PROBLEMS),
    dependencies=[CAPTURE_PURPOSE],
)
def change_flag(
    request: Request,
    flag_id: uuid.UUID,
    change: FlagChange,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("flag.work"))],
    write: WriteRequestDep,
    if_match: IfMatch = None,
) -> Response:
    def work(session: Session) -> WriteResult:
        flag = _visible_flag(session, principal, flag_id)
        now = utcnow()
        if not _if_match_holds(if_match, flag):
            raise lifecycle.stale(session, flag, now)
        before = flag.status
        changed = lifecycle.change_flag(session, flag, change, principal=principal, now=now)
        body = lifecycle.flag_out(session, flag, now)
        return WriteResult(
            body=body,
            headers={"ETag": etag(flag)},
            incident_id=flag.incident_id,
            audit=[
                AuditRecord(
                    # Nothing changed: the flag was only handed back.
                    operation="alter" if changed else "consult",
                    record_type="flag",
                    record_ids=[flag.id],
                    person_ids=_person_ids([flag]),
                    payload=body,
                    detail={
                        "from": before,
                        "to": flag.status,
                        "changed": ",".join(sorted(changed)),
                    },
                )
            ],
        )

    return run_write(request, db, write, work)


def _if_match_holds(header: str | None, flag: Flag) -> bool:
    """RFC 9110 §13.1.1: ``*`` matches any current flag; otherwise a list of entity tags
    compared strongly, so a weak tag (``W/"…"``) never matches. A header that is neither
    is a 400 that says so (not a 412 claiming the flag has changed)."""
    if header is None or not header.strip():
        raise PreconditionRequired(
            "Changing a flag needs If-Match with the ETag from your last read of it."
        )
    value = header.strip()
    if value == "*":
        return True
    tags = [t.strip() for t in value.split(",")]
    if not all(_ENTITY_TAG.match(t) for t in tags):
        raise BadRequest(
            'If-Match must be "*" or a list of quoted entity tags (RFC 9110 §13.1.1).',
            errors=[{"loc": ["header", "If-Match"], "msg": "malformed entity tag"}],
        )
    strong = [t for t in tags if not t.startswith("W/")]
    if not strong:
        raise PreconditionFailed(
            "A weak entity tag never matches a change (strong comparison); send the "
            "flag's ETag as it was given.",
            headers={"ETag": etag(flag)},
        )
    return etag(flag) in strong


@router.post(
    "/flags/{flag_id}/notes",
    status_code=201,
    response_model=FlagEventOut,
    operation_id="add_flag_note",
    summary="Add a note to a flag's history",
    description="Notes do not change the flag or its ETag; they may be added to closed "
    "flags. Free text: shown to those entitled to the flag, never logged. "
    "`Idempotency-Key` replays the original result (200).",
    responses={
        200: {"description": "Replay of the same Idempotency-Key", "model": FlagEventOut},
        **problem_responses(*COMMON_PROBLEMS),
    },
    dependencies=[CAPTURE_PURPOSE],
)
def add_flag_note(
    request: Request,
    flag_id: uuid.UUID,
    note: NoteIn,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("flag.work"))],
    write: WriteRequestDep,
) -> Response:
    def work(session: Session) -> WriteResult:
        flag = _visible_flag(session, principal, flag_id)
        event = lifecycle.add_note(session, flag, note.text, principal=principal, now=utcnow())
        body = _event_out(event).model_dump(mode="json", by_alias=True)
        return WriteResult(
            body=body,
            status_code=201,
            headers={"Location": f"/v1/flags/{flag.id}/history"},
            incident_id=flag.incident_id,
            audit=[
                AuditRecord(
                    operation="alter",
                    record_type="flag",
                    record_ids=[flag.id],
                    person_ids=_person_ids([flag]),
                    payload=body,
                    detail={"note": 1},
                )
            ],
        )

    return run_write(request, db, write, work)


@router.get(
    "/flags/{flag_id}/history",
    response_model=FlagHistory,
    operation_id="get_flag_history",
    summary="Every change to a flag: who, when, from, to, notes",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def get_flag_history(
    request: Request,
    flag_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("flag.read"))],
) -> Response:
    with db.unit() as session:
        flag = _visible_flag(session, principal, flag_id)
        body = FlagHistory(
            flag_id=str(flag.id),
            events=[_event_out(e) for e in repository.history(session, flag.id)],
        ).model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="flag",
            record_ids=[flag.id],
            person_ids=_person_ids([flag]),
            payload=body,
            detail={"history": 1},
            principal=principal,
        )
        return json_response(body)


def _event_out(event: FlagEvent) -> FlagEventOut:
    return FlagEventOut(
        id=str(event.id),
        at=event.at,
        principal_id=event.principal_id,
        role=event.role,
        change=event.change,
        from_value=event.from_value,
        to_value=event.to_value,
        note=event.note,
    )


# --------------------------------------------------------------------------- queue


@queue_router.get(
    "/queue",
    response_model=QueuePage,
    operation_id="get_queue",
    summary="Incidents for MASH triage: highest risk first, then the earliest due open flag",
    description="One row per incident with at least one open flag in your areas: the "
    "latest assessment's victim level, highest child level and risk rank, open and overdue "
    "flag counts, and the earliest due open flag. Keyset pages, stable while new "
    "incidents arrive. `cursor` is opaque: only a `next_cursor` this listing returned, with "
    "the same filters, is valid (400 otherwise). `agency`, `type` and `overdue` keep the "
    "incidents that have at least one open flag matching all of those given (the same "
    "flag): `agency=csc&overdue=true` is the incidents with an overdue open flag for "
    "children's social care. The row's counts stay those of all its open flags.",
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def get_queue(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("queue.read"))],
    area: AreaQuery = None,
    agency: Annotated[
        list[Agency] | None,
        Query(
            description="Only incidents with an open flag for one of these agencies. Repeat "
            "for several.",
            max_length=len(AGENCIES),
        ),
    ] = None,
    flag_type: Annotated[
        list[FlagType] | None,
        Query(
            alias="type",
            description="Only incidents with an open flag of one of these types. Repeat for "
            "several.",
            max_length=15,
        ),
    ] = None,
    overdue: Annotated[
        bool | None,
        Query(
            description="`true`: only incidents with an open flag past its due time; "
            "`false`: with an open flag not yet due (combined with `agency` and `type`: "
            "the same flag)."
        ),
    ] = None,
    notification_problem: Annotated[
        bool | None,
        Query(
            description="`true`: only incidents with an open flag whose notification to "
            "its agency failed, or was not acknowledged by the flag's due time (combined "
            "with `agency`, `type` and `overdue`: the same flag); `false`: with an open "
            "flag without such a problem."
        ),
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Response:
    with db.unit() as session:
        now = utcnow()
        areas = _scoped_areas(principal, area)
        match = OpenFlagMatch(
            agencies=frozenset(agency) if agency else None,
            types=frozenset(flag_type) if flag_type else None,
            overdue=overdue,
            notification_problem=notification_problem,
        )
        query: dict[str, Any] = {"areas": sorted(areas) if areas else areas}
        # Only the filters given, so that an unfiltered query keeps its fingerprint.
        if match.agencies is not None:
            query["agencies"] = sorted(match.agencies)
        if match.types is not None:
            query["types"] = sorted(match.types)
        if match.overdue is not None:
            query["overdue"] = match.overdue
        if match.notification_problem is not None:
            query["notification_problem"] = match.notification_problem
        fingerprint = query_fingerprint("queue", query)
        after = decode_key(cursor, fingerprint) if cursor else None
        rows = queue_page(session, areas=areas, after=after, limit=limit + 1, match=match, now=now)
        more = len(rows) > limit
        rows = rows[:limit]
        counts = repository.open_flag_counts(session, [r.incident_id for r in rows], now)
        next_cursor = None
        if more:
            last = rows[-1]
            next_cursor = encode_cursor(
                fingerprint,
                [last.sort_rank, last.earliest_due_at.isoformat(), str(last.incident_id)],
            )
        body = QueuePage(
            items=[_queue_row(r, *counts.get(r.incident_id, (0, 0))) for r in rows],
            next_cursor=next_cursor,
            as_of=now,
        ).model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="incident",
            record_ids=[r.incident_id for r in rows],
            payload=body,
            detail={"queue": 1, "count": len(rows)},
            principal=principal,
        )
        return json_response(body)


def _queue_row(row: Row[Any], overdue: int, notification_problems: int) -> QueueRow:
    return QueueRow(
        incident_id=str(row.incident_id),
        area=row.area,
        occurred_at=row.occurred_at,
        risk_rank=row.risk_rank,
        victim_level=row.victim_level,
        highest_child_level=row.highest_child_level,
        open_flags=row.open_flags,
        overdue_flags=overdue,
        notification_problems=notification_problems,
        earliest_due_at=row.earliest_due_at,
        assessment_id=str(row.assessment_id),
        assessment_version=row.assessment_version,
    )
