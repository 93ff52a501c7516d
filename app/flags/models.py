"""Stored follow-up flags and the full history of every change to them."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, PortableJSON, UTCDateTime, new_id, utcnow

FLAG_STATUSES = ("open", "acknowledged", "in_progress", "done", "not_required")
OPEN_STATUSES = ("open", "acknowledged", "in_progress")


class Flag(Base):
    __tablename__ = "flags"
    __table_args__ = (
        UniqueConstraint("incident_id", "dedupe_key"),
        CheckConstraint(
            "status IN ('open', 'acknowledged', 'in_progress', 'done', 'not_required')",
            name="status",
        ),
        CheckConstraint("subject_kind IN ('victim', 'child', 'perpetrator')", name="subject_kind"),
        # The queues: by priority then due time, within status, agency or area.
        Index("ix_flags_status_priority_due_at", "status", "priority", "due_at", "id"),
        Index("ix_flags_agency_status_priority_due_at", "agency", "status", "priority", "due_at"),
        Index("ix_flags_area_status_priority_due_at", "area", "status", "priority", "due_at"),
        # Area reports: the flags raised in an area in a period (app/reports).
        Index("ix_flags_area_created_at", "area", "created_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    # The assessment version whose evaluation raised the flag.
    assessment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assessments.id"))
    area: Mapped[str] = mapped_column(String(64))
    type: Mapped[str] = mapped_column(String(40))
    agency: Mapped[str] = mapped_column(String(32))
    subject_kind: Mapped[str] = mapped_column(String(16))
    subject_ref: Mapped[str] = mapped_column(String(32))
    subject_person_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"))
    # The URN of the school the subject child attends, from the incident as stored (set
    # at insert, moved by a revision that corrects it, cleared by erasure): a school sees
    # only the flags of its own schools' pupils (app.auth.policy.flag_scope).
    school_urn: Mapped[str | None] = mapped_column(String(8))
    priority: Mapped[int] = mapped_column(Integer)
    due_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(16), default="open")
    status_reason: Mapped[str | None] = mapped_column(String(1000))
    assignee: Mapped[str | None] = mapped_column(String(200))
    rule_id: Mapped[str] = mapped_column(String(64))
    rules_id: Mapped[str] = mapped_column(String(64))
    rules_version: Mapped[str] = mapped_column(String(32))
    rules_sha256: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(String(1000))
    because: Mapped[list[dict[str, Any]]] = mapped_column(PortableJSON, default=list)
    action: Mapped[str] = mapped_column(String(1000))
    dedupe_key: Mapped[str] = mapped_column(String(200))
    # Set when a later assessment no longer meets the flag's condition: a person
    # decides; nothing is closed or deleted silently.
    needs_review: Mapped[bool] = mapped_column(Boolean, default=False)
    # Optimistic concurrency: the ETag is this number.
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    # When the overdue sweep (app/flags/overdue.py) wrote this flag's overdue notices: each
    # overdue flag is announced once. Not part of the flag's representation (no new ETag).
    overdue_noticed_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)


class FlagEvent(Base):
    """Every change to a flag: who, when, what, from and to."""

    __tablename__ = "flag_events"
    __table_args__ = (
        # Area reports: a flag's first action by a person, from the index alone.
        Index("ix_flag_events_flag_id_role_at", "flag_id", "role", "at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    flag_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("flags.id"), index=True)
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    principal_id: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    change: Mapped[str] = mapped_column(String(32))
    from_value: Mapped[str | None] = mapped_column(String(200))
    to_value: Mapped[str | None] = mapped_column(String(200))
    note: Mapped[str | None] = mapped_column(Text)
