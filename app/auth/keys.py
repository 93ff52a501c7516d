"""Create, look up and revoke API keys.

A key is ``tri_<8-char prefix>_<43-char secret>``: 256 random bits from ``secrets``, a
readable prefix so a leaked key can be recognised and traced, and only its SHA-256 digest
stored (no salt is needed for a high-entropy secret, and a salt would prevent lookup).
"""

from __future__ import annotations

import hashlib
import secrets
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey
from app.auth.principal import (
    AGENCIES,
    ALL_AREAS,
    MAX_SCHOOLS,
    Principal,
    Role,
    is_school_urn,
)
from app.db import utcnow

KEY_PREFIX = "tri_"
MAX_KEY_DAYS = 3650


def hash_key(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class IssuedKey:
    id: uuid.UUID
    secret: str  # shown once, never stored
    prefix: str
    role: str


class KeySpecError(ValueError):
    """The requested key's role, agency and areas do not fit together."""


def validate_spec(
    role: Role,
    agency: str | None,
    areas: list[str],
    source_system: str | None,
    schools: list[str] | None = None,
) -> None:
    """Refuse a key whose parts do not fit together. Messages never repeat a value given."""
    schools = schools or []
    if role == "agency" and agency not in AGENCIES:
        raise KeySpecError("an agency key needs --agency, one of: " + ", ".join(AGENCIES))
    if role != "agency" and agency is not None:
        raise KeySpecError("--agency is only for role agency")
    if agency == "school" and not schools:
        raise KeySpecError(
            "a school key needs at least one --school: the URN of a school it serves"
        )
    if agency != "school" and schools:
        raise KeySpecError("--school is only for agency school")
    if not all(is_school_urn(urn) for urn in schools):
        raise KeySpecError("a school URN is 6 to 8 digits")
    if len(schools) > MAX_SCHOOLS:
        raise KeySpecError(f"a school key serves at most {MAX_SCHOOLS} schools")
    if role in ("triage", "agency", "partnership") and not areas:
        raise KeySpecError(f"a {role} key needs at least one --area (or '{ALL_AREAS}')")
    if role == "submitter" and not source_system:
        raise KeySpecError("a submitter key needs --source-system")
    if role != "submitter" and source_system is not None:
        raise KeySpecError("--source-system is only for role submitter")


def create_key(
    session: Session,
    *,
    role: Role,
    label: str = "",
    agency: str | None = None,
    areas: list[str] | None = None,
    source_system: str | None = None,
    schools: list[str] | None = None,
    expires_in_days: int | None = None,
    now: datetime | None = None,
) -> IssuedKey:
    """A new key. A school key names the schools (URNs) whose pupils it may see."""
    areas = sorted(set(areas or []))
    schools = sorted(set(schools or []))
    validate_spec(role, agency, areas, source_system, schools)
    if expires_in_days is not None and not 1 <= expires_in_days <= MAX_KEY_DAYS:
        raise KeySpecError(f"a key expires in 1 to {MAX_KEY_DAYS} days, or is kept until revoked")
    now = now or utcnow()
    prefix = KEY_PREFIX + secrets.token_hex(4)
    secret = f"{prefix}_{secrets.token_urlsafe(32)}"
    row = ApiKey(
        prefix=prefix,
        key_hash=hash_key(secret),
        role=role,
        agency=agency,
        areas=areas,
        source_system=source_system,
        schools=schools,
        label=label,
        created_at=now,
        expires_at=None if expires_in_days is None else now + timedelta(days=expires_in_days),
    )
    session.add(row)
    session.flush()
    return IssuedKey(id=row.id, secret=secret, prefix=prefix, role=role)


def principal_for_key(
    session: Session, secret: str, *, now: datetime | None = None
) -> Principal | None:
    """The principal of a presented key, or None if unknown, revoked or expired."""
    return lookup_key(session, secret, now=now).principal


def _principal(row: ApiKey) -> Principal:
    role: Role = row.role  # type: ignore[assignment]
    return Principal(
        id=f"key:{row.id}",
        kind="api_key",
        role=role,
        label=row.label,
        agency=row.agency,  # type: ignore[arg-type]
        areas=frozenset(row.areas or ()),
        source_system=row.source_system,
        # A school key made before keys named their schools has none: it sees nothing.
        schools=frozenset(row.schools or ()),
    )


def revoke_key(session: Session, key_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now or utcnow()
    return True


def key_row(session: Session, key_id: uuid.UUID) -> ApiKey | None:
    return session.get(ApiKey, key_id)


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))


class KeyCache:
    """Principals of recently presented keys, so a request needs no lookup of its key.

    Keyed by the key's SHA-256 (never the secret). Only keys that were valid are kept, for
    ``ttl`` seconds and never past their expiry; revoking a key through this process
    (``forget``) drops it at once, and other processes stop accepting it within ``ttl``.
    Bounded: the oldest entries go first.
    """

    def __init__(self, ttl: float, max_entries: int = 10_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._entries: dict[str, tuple[float, Principal]] = {}
        self._lock = threading.Lock()
        # Bumped by every revocation: a lookup that started before it is not remembered.
        self.generation = 0

    def get(self, digest: str, now: float) -> Principal | None:
        entry = self._entries.get(digest)
        if entry is None or entry[0] <= now:
            return None
        return entry[1]

    def put(self, digest: str, principal: Principal, until: float, generation: int) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if generation != self.generation:
                return  # a key was revoked while this one was looked up
            if len(self._entries) >= self.max_entries:
                self._entries.pop(next(iter(self._entries)))
            self._entries[digest] = (until, principal)

    def forget_all(self) -> None:
        """Call after a revocation has committed."""
        with self._lock:
            self.generation += 1
            self._entries.clear()


def lookup_key(session: Session, secret: str, *, now: datetime | None = None) -> KeyLookup:
    """The principal of ``secret`` (or None) and until when it may be remembered."""
    now = now or utcnow()
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return KeyLookup(None, None)
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if row is None or row.revoked_at is not None:
        return KeyLookup(None, None)
    if row.expires_at is not None and row.expires_at <= now:
        return KeyLookup(None, None)
    return KeyLookup(_principal(row), row.expires_at)


@dataclass(frozen=True)
class KeyLookup:
    principal: Principal | None
    expires_at: datetime | None
