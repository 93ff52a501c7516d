"""Stored results of writes sent with an ``Idempotency-Key``."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Integer, String, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, PortableJSON, UTCDateTime, utcnow


class IdempotencyKey(Base):
    """A stored result for (principal, key), replayed while it is kept."""

    __tablename__ = "idempotency_keys"

    principal_id: Mapped[str] = mapped_column(String(200), primary_key=True)
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    # The method and concrete path the key was first used on, and a digest of the body.
    route: Mapped[str] = mapped_column(String(200))
    fingerprint: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response_body: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    # Before headers were kept: the incident the reply is about (see ``incident_id``).
    location: Mapped[str | None] = mapped_column(String(300))
    # Response headers replayed with the body (Location, ETag).
    headers: Mapped[dict[str, str] | None] = mapped_column(PortableJSON)
    # The incident whose personal data the reply holds: erasure clears the reply.
    incident_id: Mapped[uuid.UUID | None] = mapped_column(Uuid, index=True)
    # What a replay hands back, for its audit event: record type, record and person ids.
    audit_subject: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    expires_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, index=True)
