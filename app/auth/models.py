"""API keys: random secrets stored only as a SHA-256 digest."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import CheckConstraint, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.auth.principal import AGENCIES
from app.db import Base, PortableJSON, UTCDateTime, new_id, utcnow


class ApiKey(Base):
    __tablename__ = "api_keys"
    __table_args__ = (
        CheckConstraint(
            "role IN ('submitter', 'triage', 'agency', 'auditor', 'admin')", name="role"
        ),
        CheckConstraint(
            "agency IS NULL OR agency IN (" + ", ".join(f"'{a}'" for a in AGENCIES) + ")",
            name="agency",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    prefix: Mapped[str] = mapped_column(String(24), index=True)
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    agency: Mapped[str | None] = mapped_column(String(32))
    areas: Mapped[list[str]] = mapped_column(PortableJSON, default=list)
    source_system: Mapped[str | None] = mapped_column(String(64))
    # A school key's schools (URNs): it sees only flags about their pupils. NULL on keys
    # made before keys named their schools; a school key with none sees nothing.
    schools: Mapped[list[str] | None] = mapped_column(PortableJSON)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
