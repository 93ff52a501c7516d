"""What linking and its corrections store beside the persons table.

* ``person_match_keys``: the name-and-date-of-birth key of each person record, as a
  SHA-256 digest of the normalised ``family|given|dob`` (app/people/linking.py), so the
  lookup never needs the name in clear. A key may be held by several records: two people
  can share a name and a date of birth, and linking then refuses to choose.
* ``person_merges``: every merge and unmerge, kept for good. ``persons.merged_into_id``
  holds the current state; an undone merge keeps its row with ``undone_at`` set.
"""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import CheckConstraint, ForeignKey, String, UniqueConstraint, Uuid
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, UTCDateTime, new_id, utcnow


class PersonMatchKey(Base):
    __tablename__ = "person_match_keys"
    # The unique index leads with the key, so it also serves the lookup by key.
    __table_args__ = (UniqueConstraint("key_sha256", "person_id"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    key_sha256: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)


class PersonMerge(Base):
    """One merge of ``person_id`` into ``into_id``, and its undoing if it was undone.

    ``kind`` says who merged: ``manual`` (a triage user, POST /v1/persons/{id}/merge) or
    ``name_dob`` (linking matched a new record to a known person on name and date of birth
    alone: weaker evidence, so it is kept as a merge that triage can undo).
    """

    __tablename__ = "person_merges"
    __table_args__ = (CheckConstraint("kind IN ('manual', 'name_dob')", name="kind"),)

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True, default=new_id)
    person_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    # The survivor the record was merged into (the caller's target resolved through
    # earlier merges), and the id the caller named.
    into_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"), index=True)
    requested_into_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("persons.id"))
    kind: Mapped[str] = mapped_column(String(16))
    reason: Mapped[str] = mapped_column(String(500))
    merged_by: Mapped[str] = mapped_column(String(200))
    merged_at: Mapped[dt.datetime] = mapped_column(UTCDateTime, default=utcnow)
    undone_at: Mapped[dt.datetime | None] = mapped_column(UTCDateTime)
    undone_by: Mapped[str | None] = mapped_column(String(200))
    undo_reason: Mapped[str | None] = mapped_column(String(500))
