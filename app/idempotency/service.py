"""Idempotency-Key semantics (draft-ietf-httpapi-idempotency-key-header).

The stored result is written in the same transaction as the work it protects, so a crash
leaves neither. The key is scoped to the principal (a low-entropy key can never replay
another client's result) and binds to the first request it was used with, whether that
request did the work or was itself answered as a replay: the same key with the same
method, path and body → the stored result again (200); with anything else → 422.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import BadRequest, Unprocessable
from app.idempotency.models import IdempotencyKey

_KEY = re.compile(r"^[\x21\x23-\x7e]{1,255}$")  # visible ASCII, no quote
# As documented (the quoted form too), for clients generated from the OpenAPI document.
KEY_PATTERN = r'^("[\x21\x23-\x7e]{1,255}"|[\x21\x23-\x7e]{1,255})$'


def parse_key(header: str | None) -> str | None:
    """Accept the structured-field string form (``"abc"``) and a bare token."""
    if header is None:
        return None
    value = header.strip()
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = value[1:-1]
    if not _KEY.match(value):
        raise BadRequest("Idempotency-Key must be 1-255 visible ASCII characters.")
    return value


@dataclass(frozen=True)
class Replay:
    status_code: int
    body: dict[str, Any] | None
    headers: dict[str, str] = field(default_factory=dict)
    audit_subject: dict[str, Any] = field(default_factory=dict)


def lookup(
    session: Session,
    *,
    principal_id: str,
    key: str,
    route: str,
    fingerprint: str,
    now: datetime | None = None,
) -> Replay | None:
    row = session.get(IdempotencyKey, (principal_id, key))
    if row is None:
        return None
    if row.expires_at <= (now or utcnow()):
        session.delete(row)
        session.flush()
        return None
    if row.route != route or row.fingerprint != fingerprint:
        raise Unprocessable(
            "This Idempotency-Key was already used with a different request.",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "key reused with another body"}],
        )
    headers = dict(row.headers or {})
    if not headers and row.location:
        headers["Location"] = row.location
    return Replay(row.status_code, row.response_body, headers, dict(row.audit_subject or {}))


def remember(
    session: Session,
    *,
    principal_id: str,
    key: str,
    route: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any] | None,
    headers: Mapping[str, str],
    incident_id: uuid.UUID | None,
    audit_subject: Mapping[str, Any],
    retention_days: int,
    now: datetime | None = None,
) -> None:
    now = now or utcnow()
    session.add(
        IdempotencyKey(
            principal_id=principal_id,
            key=key,
            route=route,
            fingerprint=fingerprint,
            status_code=status_code,
            response_body=body,
            location=None,
            headers=dict(headers),
            incident_id=incident_id,
            audit_subject=dict(audit_subject),
            created_at=now,
            expires_at=now + timedelta(days=retention_days),
        )
    )
    session.flush()


def purge_expired(session: Session, now: datetime | None = None) -> int:
    result = session.execute(
        delete(IdempotencyKey).where(IdempotencyKey.expires_at <= (now or utcnow()))
    )
    return int(getattr(result, "rowcount", 0) or 0)
