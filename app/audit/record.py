"""Request-level glue: write the statutory audit event(s) for what a request did.

Called by handlers inside the request's unit of work, so the event commits or rolls back
with the data it describes. The digest is of what was returned or changed; the personal
data itself never enters the log. Every response to an agency principal is also logged
as a ``disclose`` to that agency (DPA 2018 s.62(1)(d), (3)).

Changes are chained at once, as the last statement before the commit. Reads pass
``deferred=True``: their events are committed with the read and chained by the sealer
within a second (``app.audit.chain.defer``), so that concurrent reads never queue for the
chain's lock.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session

from app.audit.chain import AuditEntry, AuditOperation, append_all, defer, digest_of
from app.auth.principal import Principal
from app.contract.purposes import valid_purpose
from app.logging import route_template


@dataclass(frozen=True)
class AuditRecord:
    """An audit event a request owes: what was done, to which records and persons."""

    operation: AuditOperation
    record_type: str
    record_ids: Sequence[str | uuid.UUID]
    person_ids: Sequence[str | uuid.UUID] = ()
    payload: Any = None
    recipients: Sequence[str] = ()
    detail: Mapping[str, Any] | None = None


def entries_for(
    request: Request, event: AuditRecord, principal: Principal | None = None
) -> list[AuditEntry]:
    """The event(s) for what a request did: the operation, and for an agency principal a
    ``disclose`` to that agency as well."""
    principal = principal or request.state.principal
    common: dict[str, Any] = {
        "principal_id": principal.id,
        "role": principal.role,
        "agency": principal.agency,
        "record_type": event.record_type,
        "record_ids": [str(r) for r in event.record_ids],
        "person_ids": sorted({str(p) for p in event.person_ids}),
        "purpose": _purpose(request),
        "request_id": request.scope.get("state", {}).get("request_id"),
        "route": f"{request.method} {route_template(request.scope)}",
        "digest": digest_of(event.payload),
        "detail": dict(event.detail or {}),
    }
    entries = [AuditEntry(operation=event.operation, recipients=list(event.recipients), **common)]
    if principal.role == "agency" and event.operation != "disclose":
        # Whatever the operation, what an agency gets back has been disclosed to it.
        entries.append(
            AuditEntry(operation="disclose", recipients=[f"agency:{principal.agency}"], **common)
        )
    return entries


def record(
    request: Request,
    session: Session,
    *,
    operation: AuditOperation,
    record_type: str,
    record_ids: Sequence[str | uuid.UUID],
    person_ids: Sequence[str | uuid.UUID] = (),
    payload: Any = None,
    recipients: Sequence[str] = (),
    detail: Mapping[str, Any] | None = None,
    principal: Principal | None = None,
    deferred: bool = False,
) -> None:
    event = AuditRecord(operation, record_type, record_ids, person_ids, payload, recipients, detail)
    entries = entries_for(request, event, principal)
    if deferred:
        for entry in entries:
            defer(session, entry)
    else:
        append_all(session, entries)


def _purpose(request: Request) -> str | None:
    """The purpose the caller stated: required (and already checked) on reads of personal
    data; on other operations the ``X-Purpose`` header is kept too when it is sent."""
    checked: str | None = getattr(request.state, "purpose", None)
    if checked is not None:
        return checked
    # A route that does not check the header keeps it only if it is a purpose code: free
    # text here could itself be personal data ("checking <a name>").
    stated = request.headers.get("x-purpose", "").strip()
    return stated if valid_purpose(stated) else None
