"""Server-side sessions of the browser screens (``/ui``).

The browser holds only an opaque random token in an HttpOnly, SameSite=Strict cookie; the
server keeps its SHA-256, the principal as it was at sign-in, a CSRF token and the purpose
chosen on screen. A session ends at sign-out, after ``idle`` without a request, at its
absolute expiry, or (for a session opened with an API key) as soon as that key is revoked
or expires. Nothing here is logged: tokens are secrets.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlalchemy.sql.elements import ColumnElement

from app.auth.models import ApiKey, ScreenSession
from app.auth.principal import Principal, Role
from app.db import utcnow

Method = Literal["api_key", "oidc"]
# A session's last-seen time is written at most this often (a page view is not a write).
TOUCH_EVERY = timedelta(seconds=60)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class ScreenUser:
    """Who is signed in to the screens, as each page sees it."""

    session_id: uuid.UUID
    principal: Principal
    csrf_token: str
    purpose: str | None
    method: Method

    def csrf_matches(self, presented: str | None) -> bool:
        return presented is not None and hmac.compare_digest(
            presented.encode("utf-8"), self.csrf_token.encode("utf-8")
        )


def key_id_of(principal: Principal) -> uuid.UUID | None:
    if principal.kind != "api_key" or not principal.id.startswith("key:"):
        return None
    return uuid.UUID(principal.id.removeprefix("key:"))


def start_session(
    session: Session,
    principal: Principal,
    *,
    method: Method,
    lifetime: timedelta,
    not_after: datetime | None = None,
    now: datetime | None = None,
) -> str:
    """Store a new session; returns the token for the cookie (shown nowhere else)."""
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    expires = now + lifetime
    if not_after is not None:
        expires = min(expires, not_after)
    session.add(
        ScreenSession(
            token_hash=_digest(token),
            method=method,
            key_id=key_id_of(principal) if method == "api_key" else None,
            principal_id=principal.id,
            role=principal.role,
            agency=principal.agency,
            areas=sorted(principal.areas),
            schools=sorted(principal.schools),
            label=principal.label,
            csrf_token=secrets.token_urlsafe(32),
            created_at=now,
            last_seen_at=now,
            expires_at=expires,
        )
    )
    session.flush()
    return token


def _principal(row: ScreenSession) -> Principal:
    role: Role = row.role  # type: ignore[assignment]
    return Principal(
        id=row.principal_id,
        kind="api_key" if row.method == "api_key" else "jwt",
        role=role,
        label=row.label,
        agency=row.agency,  # type: ignore[arg-type]
        areas=frozenset(row.areas or ()),
        schools=frozenset(row.schools or ()),
    )


def _key_still_valid(session: Session, key_id: uuid.UUID | None, now: datetime) -> bool:
    if key_id is None:
        return False
    key = session.get(ApiKey, key_id)
    if key is None or key.revoked_at is not None:
        return False
    return key.expires_at is None or key.expires_at > now


def find_session(
    session: Session, token: str | None, *, idle: timedelta, now: datetime | None = None
) -> ScreenUser | None:
    """The signed-in user of a cookie's token, or None (and the stale row removed)."""
    if not token or len(token) > 200:
        return None
    now = now or utcnow()
    row = session.scalar(select(ScreenSession).where(ScreenSession.token_hash == _digest(token)))
    if row is None:
        return None
    alive = row.expires_at > now and row.last_seen_at + idle > now
    if alive and row.method == "api_key":
        alive = _key_still_valid(session, row.key_id, now)
    if not alive:
        session.delete(row)
        return None
    if now - row.last_seen_at >= TOUCH_EVERY:
        row.last_seen_at = now
    method: Method = "api_key" if row.method == "api_key" else "oidc"
    return ScreenUser(row.id, _principal(row), row.csrf_token, row.purpose, method)


def set_purpose(session: Session, session_id: uuid.UUID, purpose: str) -> None:
    row = session.get(ScreenSession, session_id)
    if row is not None:
        row.purpose = purpose


def end_session(session: Session, token: str | None) -> None:
    if token:
        session.execute(delete(ScreenSession).where(ScreenSession.token_hash == _digest(token)))


def _ended(idle: timedelta, now: datetime) -> ColumnElement[bool]:
    return (ScreenSession.expires_at <= now) | (ScreenSession.last_seen_at <= now - idle)


def any_ended(session: Session, *, idle: timedelta, now: datetime | None = None) -> bool:
    """Whether a session has ended and waits to be removed (a read: no write lock)."""
    found = session.scalar(select(ScreenSession.id).where(_ended(idle, now or utcnow())).limit(1))
    return found is not None


def purge_expired(session: Session, *, idle: timedelta, now: datetime | None = None) -> int:
    """Remove sessions past their expiry or idle too long; returns how many."""
    result = session.execute(delete(ScreenSession).where(_ended(idle, now or utcnow())))
    return int(result.rowcount or 0)  # type: ignore[attr-defined]
