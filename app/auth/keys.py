"""Create, look up and revoke API keys.

A key is ``tri_<8-char prefix>_<43-char secret>``: 256 random bits from ``secrets``, a
readable prefix so a leaked key can be recognised and traced, and only its SHA-256 digest
stored (no salt is needed for a high-entropy secret, and a salt would prevent lookup).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.models import ApiKey
from app.auth.principal import AGENCIES, ALL_AREAS, Principal, Role
from app.db import utcnow

KEY_PREFIX = "tri_"


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
    role: Role, agency: str | None, areas: list[str], source_system: str | None
) -> None:
    if role == "agency" and agency not in AGENCIES:
        raise KeySpecError("an agency key needs --agency, one of: " + ", ".join(AGENCIES))
    if role != "agency" and agency is not None:
        raise KeySpecError("--agency is only for role agency")
    if role in ("triage", "agency") and not areas:
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
    expires_in_days: int | None = None,
    now: datetime | None = None,
) -> IssuedKey:
    areas = sorted(set(areas or []))
    validate_spec(role, agency, areas, source_system)
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
        label=label,
        created_at=now,
        expires_at=now + timedelta(days=expires_in_days) if expires_in_days else None,
    )
    session.add(row)
    session.flush()
    return IssuedKey(id=row.id, secret=secret, prefix=prefix, role=role)


def principal_for_key(
    session: Session, secret: str, *, now: datetime | None = None
) -> Principal | None:
    """The principal of a presented key, or None if unknown, revoked or expired."""
    if not secret.startswith(KEY_PREFIX) or len(secret) > 200:
        return None
    row = session.scalar(select(ApiKey).where(ApiKey.key_hash == hash_key(secret)))
    if row is None or row.revoked_at is not None:
        return None
    now = now or utcnow()
    if row.expires_at is not None and row.expires_at <= now:
        return None
    role: Role = row.role  # type: ignore[assignment]
    return Principal(
        id=f"key:{row.id}",
        kind="api_key",
        role=role,
        label=row.label,
        agency=row.agency,  # type: ignore[arg-type]
        areas=frozenset(row.areas or ()),
        source_system=row.source_system,
    )


def revoke_key(session: Session, key_id: uuid.UUID, *, now: datetime | None = None) -> bool:
    row = session.get(ApiKey, key_id)
    if row is None or row.revoked_at is not None:
        return False
    row.revoked_at = now or utcnow()
    return True


def list_keys(session: Session) -> list[ApiKey]:
    return list(session.scalars(select(ApiKey).order_by(ApiKey.created_at)))
