"""Stored incidents, the persons in them, and every submission kept verbatim for audit."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from app.db import Base, PortableJSON, UTCDateTime, new_id, utcnow


class Incident(Base):
    __tablename__ = "incidents"
    __table_args__ = (
        UniqueConstraint("source_system", "source_reference"),
        Index("ix_incidents_area_occurred_at", "area", "occurred_at"),
        # Search by reference without the system (GET /v1/incidents?source_reference=).
        Index("ix_incidents_source_reference", "source_reference"),
        # Area reports: the retention reviews due in an area in a period (app/reports).
        Index("ix_incidents_area_review_due_at", "area", "review_due_at"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    source_system: Mapped[str] = mapped_column(String(64))
    source_reference: Mapped[str] = mapped_column(String(64))
    area: Mapped[str] = mapped_column(String(64))
    occurred_at: Mapped[dt.datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    created_by: Mapped[str] = mapped_column(String(200))
    # Revision number of the latest submission (1 = the original).
    version: Mapped[int] = mapped_column(Integer, default=1)
    # Canonical-JSON SHA-256 of the original body: an identical replay answers 200.
    original_sha256: Mapped[str] = mapped_column(String(64))
    review_due_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime, index=True)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    erased_by: Mapped[str | None] = mapped_column(String(200))
    erasure_reason: Mapped[str | None] = mapped_column(String(500))

    persons: Mapped[list[IncidentPerson]] = relationship(
        back_populates="incident", order_by="IncidentPerson.position", lazy="selectin"
    )


class IncidentSubmission(Base):
    """One submission (the original or a revision), verbatim as received."""

    __tablename__ = "incident_submissions"
    __table_args__ = (
        UniqueConstraint("incident_id", "revision"),
        CheckConstraint("kind IN ('original', 'revision')", name="kind"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    revision: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(16))
    received_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    principal_id: Mapped[str] = mapped_column(String(200))
    body_sha256: Mapped[str] = mapped_column(String(64))
    # The bytes as received (decoded as UTF-8) and the parsed document. Both are
    # cleared on erasure; the digest stays.
    body_raw: Mapped[str | None] = mapped_column(Text)
    body: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)
    # The response returned for this submission, replayed verbatim on a retry.
    response_body: Mapped[dict[str, Any] | None] = mapped_column(PortableJSON)


class Person(Base):
    """A person known to the service across incidents (linking: app/people/linking.py)."""

    __tablename__ = "persons"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    erased_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    # Set while this record is merged into another (app/people: merges are undoable, so
    # incident links are never rewritten; readers resolve a record to its survivor).
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("persons.id"), index=True)


class PersonIdentifier(Base):
    __tablename__ = "person_identifiers"
    __table_args__ = (
        Index("ix_person_identifiers_scheme_value", "scheme", "value"),
        CheckConstraint("scheme IN ('pnc', 'nhs', 'source')", name="scheme"),
        # One holder per identifier: the backstop if two intakes race to create a person.
        UniqueConstraint("scheme", "value"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    scheme: Mapped[str] = mapped_column(String(16))
    # Normalised (upper case, no spaces); `source` ids are prefixed with the system.
    value: Mapped[str] = mapped_column(String(200))


class IncidentPerson(Base):
    """A person's part in one incident, with the details as submitted for it."""

    __tablename__ = "incident_persons"
    __table_args__ = (
        UniqueConstraint("incident_id", "ref"),
        CheckConstraint("role IN ('victim', 'perpetrator', 'child', 'other_adult')", name="role"),
        CheckConstraint(
            "link_rule IS NULL OR link_rule IN ('identifier:pnc', 'identifier:nhs', "
            "'identifier:source', 'name_dob', 'revision', 'new')",
            name="link_rule",
        ),
        # History lookups: a person's incidents in one role (app/people/history.py).
        Index("ix_incident_persons_person_id_role", "person_id", "role", "incident_id"),
        # Area reports: an incident's victim or perpetrator, from the index alone.
        Index("ix_incident_persons_incident_id_role", "incident_id", "role", "person_id"),
    )

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    incident_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("incidents.id"), index=True)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    position: Mapped[int] = mapped_column(Integer)
    ref: Mapped[str] = mapped_column(String(32))
    role: Mapped[str] = mapped_column(String(16))
    given_name: Mapped[str | None] = mapped_column(String(200))
    family_name: Mapped[str | None] = mapped_column(String(200))
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    unborn: Mapped[bool] = mapped_column(Boolean, default=False)
    # How this person was linked to `person_id` (app/people/linking.py): the rule, and a
    # basis that names schemes and counts, never identifier values or names.
    link_rule: Mapped[str | None] = mapped_column(String(32))
    link_basis: Mapped[str | None] = mapped_column(String(300))

    incident: Mapped[Incident] = relationship(back_populates="persons")
