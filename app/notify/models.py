"""Subscriptions and the notification outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Index, Integer, String, Text, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, PortableJSON, UTCDateTime, new_id, utcnow

EVENT_KINDS = ("raised", "status_changed", "needs_review", "overdue")
CHANNELS = ("webhook", "email")
NOTIFICATION_STATUSES = ("pending", "delivered", "acknowledged", "failed")


class Subscription(Base):
    """An agency's (and optionally one area's, one school's) wish to hear of its flags."""

    __tablename__ = "subscriptions"
    __table_args__ = (
        CheckConstraint("channel IN ('webhook', 'email')", name="channel"),
        # Each channel has its own target: a webhook its URL and signing secret, an email
        # subscription its mailbox (no secret: nothing is signed).
        CheckConstraint(
            "(channel = 'webhook' AND url IS NOT NULL AND secret_encrypted IS NOT NULL"
            " AND email IS NULL)"
            " OR (channel = 'email' AND email IS NOT NULL AND url IS NULL"
            " AND secret_encrypted IS NULL)",
            name="target",
        ),
        Index("ix_subscriptions_agency_active", "agency", "active"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    agency: Mapped[str] = mapped_column(String(32))
    area: Mapped[str | None] = mapped_column(String(64))  # None: every area
    school_urn: Mapped[str | None] = mapped_column(String(8))  # None: every school
    channel: Mapped[str] = mapped_column(String(16), default="webhook")
    url: Mapped[str | None] = mapped_column(String(2000))  # a webhook's
    # An email subscription's mailbox: an agency's functional address (configuration, not
    # personal data about anyone in an incident; still never logged).
    email: Mapped[str | None] = mapped_column(String(254))
    # The webhook secret, Fernet-encrypted (it must be recoverable to sign with).
    secret_encrypted: Mapped[str | None] = mapped_column(Text)
    label: Mapped[str] = mapped_column(String(200), default="")
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    deleted_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class Notification(Base):
    """One message owed to one subscription about one flag (the outbox row)."""

    __tablename__ = "notifications"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('raised', 'status_changed', 'needs_review', 'overdue')", name="kind"
        ),
        CheckConstraint(
            "status IN ('pending', 'delivered', 'acknowledged', 'failed')", name="status"
        ),
        # The dispatcher's claim: due pending rows, oldest first.
        Index("ix_notifications_status_next_attempt_at", "status", "next_attempt_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    subscription_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("subscriptions.id"), index=True)
    flag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flags.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    # No personal data: ids, vocabulary codes, times and links only.
    payload: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    # When it may next be tried; a claimed row is pushed forward by the lease, so a
    # dispatcher that dies mid-delivery leaves it to be retried when the lease runs out.
    next_attempt_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    last_error_kind: Mapped[str | None] = mapped_column(String(64))  # never a body
    delivered_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    acknowledged_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
