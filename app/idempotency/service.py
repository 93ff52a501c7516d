"""Idempotency-Key semantics (draft-ietf-httpapi-idempotency-key-header).

The stored result is written in the same transaction as the work it protects, so a crash
leaves neither. The key is scoped to the principal (a low-entropy key can never replay
another client's result). Same key and same body → the original result again (200);
same key and a different body or route → 422.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import delete
from sqlalchemy.orm import Session

from app.db import utcnow
from app.errors import BadRequest, Unprocessable
from app.idempotency.models import IdempotencyKey

_KEY = re.compile(r"^[\x21\x23-\x7e]{1,255}$")  # visible ASCII, no quote


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
    location: str | None


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
            "This Idempotency-Key was already used with a different request body.",
            errors=[{"loc": ["header", "Idempotency-Key"], "msg": "key reused with another body"}],
        )
    return Replay(row.status_code, row.response_body, row.location)


def remember(
    session: Session,
    *,
    principal_id: str,
    key: str,
    route: str,
    fingerprint: str,
    status_code: int,
    body: dict[str, Any] | None,
    location: str | None,
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
            location=location,
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
