"""Assessments are immutable: a revision or a judgement adds a new version."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, PortableJSON, UTCDateTime, new_id, utcnow


class Assessment(Base):
    __tablename__ = "assessments"
    __table_args__ = (
        UniqueConstraint("incident_id", "version"),
        CheckConstraint("trigger IN ('intake', 'revision', 'judgement')", name="trigger"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    version: Mapped[int] = mapped_column(Integer)
    trigger: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    submission_revision: Mapped[int] = mapped_column(Integer)
    # Everything the engine was given (incident as scored, history, judgements,
    # classifier output), so that `reproduce` can run it again exactly. JSON text on
    # PostgreSQL too (``json``, not ``jsonb``): written once, only ever read whole, as text
    # (migration b7ac4f8bb363 says why).
    inputs: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    # The engine's output: the assessment *is* its explanation.
    result: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    victim_level: Mapped[str] = mapped_column(String(16))
    # Highest of the victim's and children's risk, as a rank for the queue (0-3).
    risk_rank: Mapped[int] = mapped_column(Integer)
    marac_refer: Mapped[bool] = mapped_column(Boolean)
    victim_checklist_id: Mapped[str] = mapped_column(String(64))
    victim_checklist_version: Mapped[str] = mapped_column(String(32))
    victim_checklist_sha256: Mapped[str] = mapped_column(String(64))
    child_checklist_id: Mapped[str] = mapped_column(String(64))
    child_checklist_version: Mapped[str] = mapped_column(String(32))
    child_checklist_sha256: Mapped[str] = mapped_column(String(64))
    flag_rules_sha256: Mapped[str | None] = mapped_column(String(64))
    classifier_sha256: Mapped[str | None] = mapped_column(String(64))
    # What the area report counts, taken from ``inputs`` and ``result`` when the row is
    # written (app/assessments/facts.py), so a report never reads the JSON. NULL only for
    # rows whose content was erased before the columns existed.
    marac_repeat: Mapped[bool | None] = mapped_column(Boolean)
    serial_perpetrator: Mapped[bool | None] = mapped_column(Boolean)
    children_moderate: Mapped[int | None] = mapped_column(Integer)
    children_moderate_to_serious: Mapped[int | None] = mapped_column(Integer)
    children_serious: Mapped[int | None] = mapped_column(Integer)
    children_severe: Mapped[int | None] = mapped_column(Integer)
    children_present: Mapped[int | None] = mapped_column(Integer)
    children_witnessed: Mapped[int | None] = mapped_column(Integer)
    children_injured: Mapped[int | None] = mapped_column(Integer)
    children_intervened: Mapped[int | None] = mapped_column(Integer)
    children_not_spoken_to: Mapped[int | None] = mapped_column(Integer)
    separation_related: Mapped[bool | None] = mapped_column(Boolean)
    # What a what-if checks before counting the stored result as current
    # (app/assessments/facts.py ``result_facts``).
    engine_version: Mapped[str | None] = mapped_column(String(16))
    classifier_raised: Mapped[bool | None] = mapped_column(Boolean)
    victim_score: Mapped[int | None] = mapped_column(Integer)


class DefinitionSnapshot(Base):
    """Every checklist, rules set or scorecard definition ever used, by hash.

    Reproduction reads the definition from here, so a past score stays reproducible
    even after its file is replaced or removed.
    """

    __tablename__ = "definition_snapshots"

    sha256: Mapped[str] = mapped_column(String(64), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    definition_id: Mapped[str] = mapped_column(String(64))
    version: Mapped[str] = mapped_column(String(32))
    body: Mapped[dict[str, Any]] = mapped_column(PortableJSON)
    first_used_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class Judgement(Base):
    """A professional judgement recorded after intake (raises, never lowers): of the victim
    (``subject_ref`` null) or, with rules v2, of one child (``subject_ref`` its ref)."""

    __tablename__ = "judgements"
    __table_args__ = (
        CheckConstraint(
            "(subject_ref IS NULL AND level IN ('standard', 'medium', 'high')) OR "
            "(subject_ref IS NOT NULL AND level IN "
            "('moderate', 'moderate_to_serious', 'serious', 'severe'))",
            name="level",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    assessment_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("assessments.id"))
    level: Mapped[str] = mapped_column(String(32))
    subject_ref: Mapped[str | None] = mapped_column(String(64))
    rationale: Mapped[str | None] = mapped_column(Text)
    by: Mapped[str] = mapped_column(String(200))
    at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
