"""The statutory audit log (DPA 2018 s.62): one hash-chained row per logged operation.

``audit_events`` is the chain itself. ``audit_event_records`` is a derived index of the
record and person ids each event names, so that an auditor's ``?record=`` and ``?person=``
searches are index lookups on both SQLite and PostgreSQL instead of scans of JSON lists.
The index rows are written in the same append as the event and ``verify`` checks that they
still match the hashed lists, so deleting an index row to hide an event from a search is
detected like any other tampering.

Rows are never updated or deleted by the service. ``seq`` is assigned by the appender under
the chain lock (head + 1), never by the database: SQLite may reuse rowids, and sequences on
PostgreSQL leave gaps on rollback, while the verifier requires 1, 2, 3, ... without gaps.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Uuid,
)
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, PortableJSON, UTCDateTime

# The six operations s.62(1) requires to be logged.
OPERATIONS = ("collect", "alter", "consult", "disclose", "combine", "erase")
INDEX_KINDS = ("record", "person")

HASH_HEX_LENGTH = 64
PURPOSE_MAX_LENGTH = 200
PRINCIPAL_MAX_LENGTH = 200
ROLE_MAX_LENGTH = 40
AGENCY_MAX_LENGTH = 100
RECORD_TYPE_MAX_LENGTH = 40
RECORD_ID_MAX_LENGTH = 100
REQUEST_ID_MAX_LENGTH = 64
ROUTE_MAX_LENGTH = 200


def _in_list(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


class AuditContent:
    """What an audit event says: who did which operation to which records, and why.

    The same columns on the chain and on the pending events, so an event moves from one
    to the other unchanged; on the chain they are hashed with ``seq`` and ``prev_hash``.
    """

    id: Mapped[uuid.UUID] = mapped_column(Uuid, unique=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime)
    principal_id: Mapped[str] = mapped_column(String(PRINCIPAL_MAX_LENGTH))
    role: Mapped[str] = mapped_column(String(ROLE_MAX_LENGTH))
    agency: Mapped[str | None] = mapped_column(String(AGENCY_MAX_LENGTH))
    operation: Mapped[str] = mapped_column(String(16))
    record_type: Mapped[str] = mapped_column(String(RECORD_TYPE_MAX_LENGTH))
    record_ids: Mapped[list[str]] = mapped_column(PortableJSON)
    person_ids: Mapped[list[str]] = mapped_column(PortableJSON)
    purpose: Mapped[str | None] = mapped_column(String(PURPOSE_MAX_LENGTH))
    recipients: Mapped[list[str]] = mapped_column(PortableJSON)
    request_id: Mapped[str | None] = mapped_column(String(REQUEST_ID_MAX_LENGTH))
    route: Mapped[str | None] = mapped_column(String(ROUTE_MAX_LENGTH))
    # sha256 of what was returned or changed, computed by the caller; never the data itself.
    digest: Mapped[str] = mapped_column(String(HASH_HEX_LENGTH))
    # Non-personal metadata only: counts, outcome, versions.
    detail: Mapped[dict[str, Any]] = mapped_column(PortableJSON)


class AuditEvent(AuditContent, Base):
    """One logged operation on personal data. Holds ids and digests, never the data itself."""

    __tablename__ = "audit_events"
    __table_args__ = (
        CheckConstraint(_in_list("operation", OPERATIONS), name="operation"),
        CheckConstraint("seq >= 1", name="seq_positive"),
        Index(None, "operation"),
        Index(None, "principal_id"),
        Index(None, "occurred_at"),
    )

    seq: Mapped[int] = mapped_column(
        BigInteger, primary_key=True, autoincrement=False, sort_order=-1
    )
    prev_hash: Mapped[str] = mapped_column(String(HASH_HEX_LENGTH))
    hash: Mapped[str] = mapped_column(String(HASH_HEX_LENGTH))


class AuditEventRecord(Base):
    """Index row: event ``event_seq`` names record (or person) ``record_id``."""

    __tablename__ = "audit_event_records"
    __table_args__ = (
        CheckConstraint(_in_list("kind", INDEX_KINDS), name="kind"),
        Index(None, "record_id", "kind"),
    )

    event_seq: Mapped[int] = mapped_column(
        BigInteger, ForeignKey("audit_events.seq"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(8), primary_key=True)
    record_id: Mapped[str] = mapped_column(String(RECORD_ID_MAX_LENGTH), primary_key=True)


class AuditPendingEvent(AuditContent, Base):
    """A read's audit event, committed with the read and not yet chained.

    Reads of personal data are logged like everything else, but chaining each one would
    make every read wait for the chain's lock (and write the chain's index rows while the
    client waits). Instead a read inserts its event here, which takes no lock, and the
    sealer (``app.audit.chain.seal_pending``: every second in each process, and before any
    read of the log) appends the waiting events to the chain in order, in one batch,
    deleting them here in the same transaction. Until then the event is stored and counted
    (``/metrics``, ``/v1/audit/verify``) but not yet tamper-evident.
    """

    __tablename__ = "audit_pending_events"

    pending_id: Mapped[int] = mapped_column(
        BigInteger().with_variant(Integer(), "sqlite"),
        primary_key=True,
        autoincrement=True,
        sort_order=-1,
    )
