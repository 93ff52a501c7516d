"""Every write, one way: replay protection, the work, the audit record, one transaction.

A write route hands its work to ``run_write`` as a function of the session. In one unit of
work (app/db.py: one thread, bounded waits) it

1. answers a retry that carries a known ``Idempotency-Key`` with the stored result (200,
   ``Idempotent-Replayed: true``), logging the replay as a ``consult`` of what it hands
   back; the same key with another method, path or body is a 422;
2. otherwise runs the work, which returns a ``WriteResult`` (body, status, headers and
   the audit events it owes);
3. stores the result under the key, if one was sent (so the key is bound to this request
   even when the work itself answered as a replay);
4. appends the audit events last, immediately before the commit: the audit chain's lock
   (app/audit/chain.py) is held only for that append and the commit.

The response is serialised here, once, from the JSON body that is also stored and digested.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import Depends, Header, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session

from app.audit.chain import AuditEntry, append_all
from app.audit.record import AuditRecord, entries_for, record
from app.auth.deps import CurrentPrincipal
from app.auth.principal import Principal
from app.canonical import sha256_hex
from app.db import Database
from app.idempotency import service as store
from app.responses import json_response

REPLAYED_HEADER = "Idempotent-Replayed"


@dataclass
class WriteResult:
    """What a write returns: its JSON body, and what goes with it."""

    body: dict[str, Any] | None
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    audit: list[AuditRecord] = field(default_factory=list)
    # The incident whose personal data the body holds (erasure clears a stored reply).
    incident_id: uuid.UUID | None = None
    # False for replies that must never be stored (a new API key's secret).
    replayable: bool = True
    # Events prepared in full by the work (the system's own changes), appended first.
    entries: list[AuditEntry] = field(default_factory=list)


@dataclass(frozen=True)
class WriteRequest:
    """A write's identity for replay protection: who, which key, what exactly."""

    principal: Principal
    key: str | None
    route: str
    fingerprint: str


async def write_request(
    request: Request,
    principal: CurrentPrincipal,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            description="Replay protection for retries: the same key with the same method, "
            "path and body returns the original result (200, `Idempotent-Replayed: true`); "
            "with anything else, 422. Kept for at least 7 days "
            "(`TRIAGE_IDEMPOTENCY_RETENTION_DAYS`). 1-255 visible ASCII characters other "
            'than `"`, optionally sent quoted (a structured-field string); otherwise 400.',
            json_schema_extra={"pattern": store.KEY_PATTERN},
        ),
    ] = None,
) -> WriteRequest:
    key = store.parse_key(idempotency_key)
    body = await request.body()
    if not body:
        content: Any = None
    else:
        try:
            content = await request.json()
        except ValueError:
            content = body.hex()
    try:
        # Identical means the same JSON document, whatever the key order or whitespace.
        fingerprint = sha256_hex(content)
    except ValueError:
        # A number canonical JSON cannot hold (validation refuses the body next): the bytes.
        fingerprint = sha256_hex(body.hex())
    return WriteRequest(
        principal=principal,
        key=key,
        route=f"{request.method} {request.url.path}",
        fingerprint=fingerprint,
    )


WriteRequestDep = Annotated[WriteRequest, Depends(write_request)]


def run_write(
    request: Request,
    database: Database,
    write: WriteRequest,
    work: Callable[[Session], WriteResult],
) -> Response:
    """Replay or run ``work`` in one unit of work; see the module docstring."""
    settings = request.app.state.settings
    with database.unit() as session:
        if write.key is not None:
            replay = store.lookup(
                session,
                principal_id=write.principal.id,
                key=write.key,
                route=write.route,
                fingerprint=write.fingerprint,
            )
            if replay is not None and replay.body is not None:
                subject = replay.audit_subject
                record(
                    request,
                    session,
                    # A replay hands stored data back: that is a consultation.
                    operation="consult",
                    record_type=subject.get("record_type", "idempotency"),
                    record_ids=subject.get("record_ids", []),
                    person_ids=subject.get("person_ids", []),
                    payload=replay.body,
                    detail={"replayed": 1, "status": replay.status_code},
                    principal=write.principal,
                )
                return json_response(replay.body, 200, {**replay.headers, REPLAYED_HEADER: "true"})
        result = work(session)
        if write.key is not None and result.replayable:
            first = result.audit[0] if result.audit else None
            store.remember(
                session,
                principal_id=write.principal.id,
                key=write.key,
                route=write.route,
                fingerprint=write.fingerprint,
                status_code=result.status_code,
                body=result.body,
                headers={k: v for k, v in result.headers.items() if k != REPLAYED_HEADER},
                incident_id=result.incident_id,
                audit_subject=(
                    {
                        "record_type": first.record_type,
                        "record_ids": [str(r) for r in first.record_ids],
                        "person_ids": [str(p) for p in first.person_ids],
                    }
                    if first is not None
                    else {}
                ),
                retention_days=settings.idempotency_retention_days,
            )
        # Every event the write owes, chained at once: one lock, one head read, one insert.
        append_all(
            session,
            [
                *result.entries,
                *(
                    entry
                    for event in result.audit
                    for entry in entries_for(request, event, write.principal)
                ),
            ],
        )
    return json_response(result.body, result.status_code, result.headers)
