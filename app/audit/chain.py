"""Appending to and verifying the tamper-evident audit hash chain.

Each event stores ``prev_hash`` (the previous event's ``hash``; 64 zeros for the first) and
``hash = sha256(prev_hash + canonical_json(content))`` where ``content`` is every stored
field except ``hash`` itself. Editing, deleting or reordering any event breaks the chain at
that event or the next, and ``verify`` names the first broken link. Truncating the tail or
rewriting the whole chain consistently is only detectable against a head kept outside the
database: ``verify(..., anchor=(seq, hash))``.

The hash, precisely (so that an independent verifier can be written from this text):
``content`` is a JSON object with the keys seq, id, occurred_at, principal_id, role, agency,
operation, record_type, record_ids, person_ids, purpose, recipients, request_id, route,
digest, detail and prev_hash; ``id`` is the lower-case hyphenated UUID and ``occurred_at``
is RFC 3339 UTC with six fractional digits and a ``Z`` (``2026-01-31T09:15:00.000000Z``).
It is serialised with RFC 8785 (JCS) and ``hash = sha256_hex(ascii(prev_hash) + jcs)``.
``event_as_json`` (and ``triage audit export``) emit exactly ``content`` plus ``hash``.

Concurrency (docs/reliability-research.md §4.2): a naive "read the head, insert the next event"
forks under concurrent requests, so appends are serialised. On PostgreSQL ``append`` takes a
transaction-scoped advisory lock (released by the request's commit or rollback, and safe
behind PgBouncer transaction pooling); on SQLite the engine from ``app.db.create_db_engine``
already opens every transaction with ``BEGIN IMMEDIATE``, which holds the write lock. As a
second line of defence ``seq`` is the primary key and always head + 1, so two appenders that
somehow read the same head collide on ``seq`` (one transaction fails) rather than fork.
PostgreSQL sessions must use READ COMMITTED (the default): under REPEATABLE READ a request
that read anything before appending keeps its older snapshot, sees a stale head and fails
on ``seq``.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import Enum
from typing import Any, Literal

from pydantic import BaseModel
from sqlalchemy import Connection, Row, delete, func, insert, select
from sqlalchemy.orm import Session

import app.canonical
from app.audit.models import (
    AGENCY_MAX_LENGTH,
    HASH_HEX_LENGTH,
    OPERATIONS,
    PRINCIPAL_MAX_LENGTH,
    PURPOSE_MAX_LENGTH,
    RECORD_ID_MAX_LENGTH,
    REQUEST_ID_MAX_LENGTH,
    ROLE_MAX_LENGTH,
    ROUTE_MAX_LENGTH,
    AuditEvent,
    AuditEventRecord,
    AuditPendingEvent,
)
from app.db import new_id, table_of, utcnow

AuditOperation = Literal["collect", "alter", "consult", "disclose", "combine", "erase"]

GENESIS_HASH = "0" * HASH_HEX_LENGTH

# Key of the PostgreSQL advisory lock that serialises appends: the ASCII bytes "datriage"
# read as a signed 64-bit integer. Fixed forever: every process (and any other tool that
# appends to the chain) must use the same key.
AUDIT_CHAIN_LOCK_KEY = 0x6461_7472_6961_6765

# Integers outside this range do not survive JSON round trips through every client.
_MAX_SAFE_INTEGER = 2**53 - 1
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_RECORD_TYPE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")

# The stored fields that are hashed, in table order (everything except ``hash``).
_EVENTS = table_of(AuditEvent)
_INDEX = table_of(AuditEventRecord)
CONTENT_FIELDS: tuple[str, ...] = tuple(c.name for c in _EVENTS.columns if c.name != "hash")


@dataclass(frozen=True, kw_only=True)
class AuditEntry:
    """What a caller logs: who did which operation to which records, and a digest of the data.

    ``digest`` is the sha256 (see ``digest_of``) of what was returned or changed, never the
    data. ``detail`` holds non-personal metadata only (counts, outcome, versions); its numbers
    must be integers (store anything else as a string) so the hash survives JSON round trips.
    ``occurred_at`` defaults to the time of the append.
    """

    principal_id: str
    role: str
    agency: str | None
    operation: AuditOperation
    record_type: str
    record_ids: Sequence[str | uuid.UUID]
    person_ids: Sequence[str | uuid.UUID] = ()
    purpose: str | None = None
    recipients: Sequence[str] = ()
    request_id: str | None = None
    route: str | None = None
    digest: str
    detail: Mapping[str, Any] = field(default_factory=dict)
    occurred_at: datetime | None = None


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of walking the chain. ``first_broken_seq`` and ``reason`` are set when not ok."""

    ok: bool
    events_checked: int
    head_seq: int
    head_hash: str
    first_broken_seq: int | None = None
    reason: str | None = None


# --- canonical form -------------------------------------------------------------------------


def format_timestamp(value: datetime) -> str:
    """RFC 3339 in UTC with microseconds: ``2026-01-31T09:15:00.000000Z``."""
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not accepted")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _jsonable(obj: Any) -> Any:
    """Plain JSON values from common Python types (datetimes, UUIDs, enums, models, tuples)."""
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    if isinstance(obj, datetime):
        return format_timestamp(obj)
    if isinstance(obj, date):
        return obj.isoformat()
    if isinstance(obj, uuid.UUID):
        return str(obj)
    if isinstance(obj, Enum):
        return _jsonable(obj.value)
    if isinstance(obj, BaseModel):
        return obj.model_dump(mode="json")
    if isinstance(obj, Mapping):
        return {_key(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_jsonable(v) for v in obj]
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


def _key(key: Any) -> str:
    if not isinstance(key, str):
        raise TypeError("JSON object keys must be strings")
    return key


def _json_default(obj: Any) -> Any:
    """What the canonical encoder cannot write itself, as ``_jsonable`` converts it."""
    if isinstance(obj, BaseModel | Mapping | datetime | date | Enum):
        return _jsonable(obj)
    raise TypeError(f"{type(obj).__name__} is not JSON-able")


def canonical_json(obj: Any) -> bytes:
    """RFC 8785 (JCS) canonical JSON: sorted keys, no whitespace, UTF-8."""
    fast = app.canonical.fast_canonical_json(obj, default=_json_default)
    return fast if fast is not None else app.canonical.canonical_json(_jsonable(obj))


def digest_of(obj: Any) -> str:
    """sha256 hex of the canonical JSON of ``obj``, for ``AuditEntry.digest``."""
    return hashlib.sha256(canonical_json(obj)).hexdigest()


def _content(values: Mapping[str, Any]) -> dict[str, Any]:
    content = {name: values[name] for name in CONTENT_FIELDS}
    content["id"] = str(content["id"])
    if isinstance(content["occurred_at"], datetime):  # a str is already in exported form
        content["occurred_at"] = format_timestamp(content["occurred_at"])
    return content


def event_as_json(event: AuditEvent | Mapping[str, Any]) -> dict[str, Any]:
    """An event as plain JSON: every stored field, ids and times as strings.

    This is exactly the hashed content plus ``hash``, so anyone holding an export can check
    each event with sha256 and any RFC 8785 implementation (see the module docstring).
    """
    values: Mapping[str, Any] = (
        {name: getattr(event, name) for name in (*CONTENT_FIELDS, "hash")}
        if isinstance(event, AuditEvent)
        else event
    )
    return {**_content(values), "hash": values["hash"]}


def compute_hash(values: Mapping[str, Any]) -> str:
    """The hash of an event from its stored fields (``prev_hash`` included), as stored or
    as ``event_as_json`` gives them."""
    payload = values["prev_hash"].encode("ascii") + canonical_json(_content(values))
    return hashlib.sha256(payload).hexdigest()


# --- append ---------------------------------------------------------------------------------


_HEAD = select(_EVENTS.c.seq, _EVENTS.c.hash).order_by(_EVENTS.c.seq.desc()).limit(1)
_INSERT_EVENTS = insert(_EVENTS)
_INSERT_INDEX = insert(_INDEX)
_PENDING = table_of(AuditPendingEvent)
_INSERT_PENDING = insert(_PENDING)


def head(session: Session | Connection) -> tuple[int, str]:
    """The last event's ``(seq, hash)``; ``(0, GENESIS_HASH)`` for an empty chain."""
    row = session.execute(_HEAD).first()
    if row is None:
        return 0, GENESIS_HASH
    return int(row.seq), str(row.hash)


def append(session: Session, entry: AuditEntry) -> AuditEvent:
    """Append ``entry`` to the chain in the session's transaction and return the event.

    Never commits: the caller's unit of work does, so the event lands with the change it
    logs or not at all. The chain lock is held until that commit or rollback, so call this
    as late in the transaction as possible (after the other writes). The caller's pending
    writes are flushed before the lock is taken, so they are not written while holding it.
    """
    return append_all(session, [entry])[0]


def append_all(session: Session, entries: Sequence[AuditEntry]) -> list[AuditEvent]:
    """``append`` for several entries, in order, with one head read and one insert per
    table (a write that owes several events takes the lock once and writes them at once)."""
    if not entries:
        return []
    batch = [_validated(entry) for entry in entries]
    session.flush()
    _lock_chain(session)
    return _append_many(session, batch)


def defer(session: Session, entry: AuditEntry) -> None:
    """Log a read as a pending event, committed with the read; the sealer chains it within
    about a second. Takes no lock: concurrent reads never wait for the chain (on PostgreSQL;
    on SQLite every write waits for the database's single write lock, but only for a
    one-row insert, the chain's index rows being written by the sealer)."""
    session.execute(_INSERT_PENDING, [_validated(entry)])


def _lock_chain(session: Session, *, wait: bool = True) -> bool:
    """Serialise appends (see the module docstring); False if ``wait`` is off and another
    transaction holds the lock (PostgreSQL)."""
    connection = session.connection()
    if connection.dialect.name == "postgresql":
        if not wait:
            return bool(
                connection.execute(
                    select(func.pg_try_advisory_xact_lock(AUDIT_CHAIN_LOCK_KEY))
                ).scalar()
            )
        connection.execute(select(func.pg_advisory_xact_lock(AUDIT_CHAIN_LOCK_KEY)))
        return True
    if connection.dialect.name == "sqlite":
        # The engine's `begin` hook issues BEGIN IMMEDIATE; without it the head would be
        # read outside the write lock and concurrent appends would collide.
        dbapi = connection.connection.dbapi_connection
        if dbapi is None or not getattr(dbapi, "in_transaction", False):
            raise RuntimeError(
                "SQLite audit appends need an engine from app.db.create_db_engine "
                "(BEGIN IMMEDIATE); this connection is not in a transaction"
            )
        return True
    raise RuntimeError(  # pragma: no cover - only the two supported databases
        f"unsupported database for the audit chain: {connection.dialect.name}"
    )


def _append_locked(session: Session, values: dict[str, Any]) -> AuditEvent:
    """Read the head and insert the next event. Callers must hold the chain lock."""
    return _append_many(session, [values])[0]


def _append_many(session: Session, batch: list[dict[str, Any]]) -> list[AuditEvent]:
    """Chain ``batch`` after the head, in order, with one insert per table.

    Callers must hold the chain lock. Plain batched INSERT statements rather than a
    unit-of-work flush keep the work done while holding the lock (which serialises every
    append) small.
    """
    head_seq, head_hash = head(session)
    index_rows = []
    for values in batch:
        head_seq += 1
        values["seq"] = head_seq
        values["prev_hash"] = head_hash
        values["hash"] = head_hash = compute_hash(values)
        index_rows += [
            {"event_seq": head_seq, "kind": kind, "record_id": record_id}
            for kind, ids in (("record", values["record_ids"]), ("person", values["person_ids"]))
            for record_id in dict.fromkeys(ids)  # unique, in order
        ]
    session.execute(_INSERT_EVENTS, batch)
    if index_rows:
        session.execute(_INSERT_INDEX, index_rows)
    return [AuditEvent(**values) for values in batch]


# --- pending events -------------------------------------------------------------------------

SEAL_BATCH = 1000


def seal_pending(session: Session, *, wait: bool = True, limit: int = SEAL_BATCH) -> int:
    """Chain up to ``limit`` pending events (oldest first) and remove them from pending.

    Returns how many were sealed. With ``wait`` off, gives up at once (0) when another
    transaction holds the chain lock (PostgreSQL; on SQLite the caller's unit of work holds
    the write lock already). Never commits: the caller does, so a pending event is either
    still pending or chained, never both and never lost.
    """
    session.flush()
    if not _lock_chain(session, wait=wait):
        return 0
    rows = list(
        session.execute(select(_PENDING).order_by(_PENDING.c.pending_id).limit(limit)).mappings()
    )
    if not rows:
        return 0
    batch = [{name: row[name] for name in CONTENT_FIELDS if name in row} for row in rows]
    _append_many(session, batch)
    session.execute(
        delete(_PENDING).where(_PENDING.c.pending_id.in_([row["pending_id"] for row in rows]))
    )
    return len(rows)


def seal_all(session: Session) -> int:
    """Seal every pending event (before reading the log); the caller commits."""
    total = 0
    while sealed := seal_pending(session):
        total += sealed
    return total


@dataclass(frozen=True)
class PendingStatus:
    count: int
    oldest_at: datetime | None


def pending_status(session: Session | Connection) -> PendingStatus:
    count, oldest = session.execute(select(func.count(), func.min(_PENDING.c.occurred_at))).one()
    if isinstance(oldest, str):  # SQLite without the column's type (aggregate)
        oldest = datetime.fromisoformat(oldest).replace(tzinfo=UTC)
    return PendingStatus(int(count), oldest)


def _validated(entry: AuditEntry) -> dict[str, Any]:
    """The stored form of ``entry``, rejecting anything that would not hash identically
    after a round trip through either database."""
    if entry.operation not in OPERATIONS:
        raise ValueError(f"operation must be one of {', '.join(OPERATIONS)}")
    if not _RECORD_TYPE.match(entry.record_type):
        raise ValueError("record_type must be a short lower-case name")
    if not _HEX64.match(entry.digest):
        raise ValueError("digest must be 64 lower-case hex characters (see digest_of)")
    occurred_at = entry.occurred_at if entry.occurred_at is not None else utcnow()
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at must be timezone-aware")
    detail = _jsonable(entry.detail)
    if not isinstance(detail, dict):
        raise TypeError("detail must be a mapping")
    _check_detail(detail)
    canonical_json(detail)  # raises on values JCS cannot represent
    return {
        "id": new_id(),
        "occurred_at": occurred_at.astimezone(UTC),
        "principal_id": _text("principal_id", entry.principal_id, PRINCIPAL_MAX_LENGTH),
        "role": _text("role", entry.role, ROLE_MAX_LENGTH),
        "agency": _optional_text("agency", entry.agency, AGENCY_MAX_LENGTH),
        "operation": entry.operation,
        "record_type": entry.record_type,
        "record_ids": _id_list("record_ids", entry.record_ids),
        "person_ids": _id_list("person_ids", entry.person_ids),
        "purpose": _optional_text("purpose", entry.purpose, PURPOSE_MAX_LENGTH),
        "recipients": _id_list("recipients", entry.recipients),
        "request_id": _optional_text("request_id", entry.request_id, REQUEST_ID_MAX_LENGTH),
        "route": _optional_text("route", entry.route, ROUTE_MAX_LENGTH),
        "digest": entry.digest,
        "detail": detail,
    }


def _text(name: str, value: str, max_length: int) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > max_length:
        raise ValueError(f"{name} is longer than {max_length} characters")
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character")
    return value


def _optional_text(name: str, value: str | None, max_length: int) -> str | None:
    return None if value is None else _text(name, value, max_length)


def _id_list(name: str, values: Sequence[str | uuid.UUID]) -> list[str]:
    if isinstance(values, str | bytes):
        raise TypeError(f"{name} must be a sequence of ids, not a string")
    return [
        _text(name, str(v) if isinstance(v, uuid.UUID) else v, RECORD_ID_MAX_LENGTH) for v in values
    ]


def _check_detail(value: Any) -> None:
    if isinstance(value, bool) or value is None:
        return
    if isinstance(value, float):
        raise TypeError("detail numbers must be integers; store other numbers as strings")
    if isinstance(value, int):
        if abs(value) > _MAX_SAFE_INTEGER:
            raise ValueError("detail integers must be within +/-(2**53 - 1)")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError("detail strings must not contain NUL characters")
        return
    children = value.values() if isinstance(value, dict) else value
    for child in children:
        _check_detail(child)


# --- verify ---------------------------------------------------------------------------------


def verify(
    session_or_connection: Session | Connection,
    *,
    batch_size: int = 5000,
    anchor: tuple[int, str] | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> VerifyResult:
    """Walk the chain from event 1 to the current head and name the first broken link.

    Recomputes every hash from the stored content, checks every ``prev_hash`` link, that
    seqs run 1, 2, 3, ... without gaps, and that the record/person index rows match each
    event. Reads ``batch_size`` events at a time, so memory stays bounded. With ``anchor``
    (a ``(seq, hash)`` head kept outside the database) it also detects a truncated tail and
    a chain rewritten consistently from some point on. ``on_batch`` hears how many events
    each batch checked (a command's progress).
    """
    if batch_size < 1:
        raise ValueError("batch_size must be at least 1")
    conn = session_or_connection
    head_seq, head_hash = head(conn)
    checked = 0
    previous_seq, previous_hash = 0, GENESIS_HASH

    def broken(seq: int, reason: str) -> VerifyResult:
        return VerifyResult(False, checked, head_seq, head_hash, seq, reason)

    for batch in _batches(conn, head_seq, batch_size):
        for seq, values, index_entries in batch:
            expected_seq = previous_seq + 1
            if seq != expected_seq:
                return broken(expected_seq, f"sequence gap: event {expected_seq} missing")
            if values is None:
                return broken(seq, "unreadable content: content altered")
            if values["prev_hash"] != previous_hash:
                return broken(
                    seq, f"prev_hash does not match previous event (event {previous_seq})"
                )
            try:
                recomputed = compute_hash(values)
            except (ValueError, TypeError, KeyError, AttributeError):
                return broken(seq, "content cannot be canonicalised: content altered")
            if recomputed != values["hash"]:
                return broken(seq, "hash mismatch: content altered")
            if index_entries != _expected_index(values):
                return broken(seq, "record index does not match event content")
            previous_seq, previous_hash = seq, values["hash"]
            checked += 1
        if on_batch is not None:
            on_batch(len(batch))

    if previous_seq != head_seq:  # the walk found fewer rows than the head promised
        return broken(previous_seq + 1, f"sequence gap: event {previous_seq + 1} missing")
    if anchor is not None:
        anchor_seq, anchor_hash = anchor
        if anchor_seq > head_seq:
            return broken(
                head_seq + 1,
                f"anchor check failed: event {anchor_seq} missing "
                f"(chain truncated after event {head_seq})",
            )
        stored = GENESIS_HASH if anchor_seq == 0 else _stored_hash(conn, anchor_seq)
        if stored != anchor_hash:
            return broken(
                anchor_seq,
                f"anchor check failed: event {anchor_seq} hash differs from the anchor "
                "(chain rewritten)",
            )
    return VerifyResult(True, checked, head_seq, head_hash)


_IndexSet = frozenset[tuple[str, str]]


def _expected_index(values: Mapping[str, Any]) -> _IndexSet:
    return frozenset(
        [("record", str(r)) for r in values["record_ids"]]
        + [("person", str(p)) for p in values["person_ids"]]
    )


def _stored_hash(conn: Session | Connection, seq: int) -> str | None:
    row = conn.execute(select(_EVENTS.c.hash).where(_EVENTS.c.seq == seq)).first()
    return None if row is None else str(row.hash)


_Walked = tuple[int, dict[str, Any] | None, _IndexSet]


def _batches(conn: Session | Connection, head_seq: int, batch_size: int) -> Iterator[list[_Walked]]:
    """Events with seq in (0, head_seq] in seq order, ``batch_size`` at a time, each with its
    index rows. An event whose stored values cannot even be decoded (possible on SQLite,
    which does not enforce column types) comes back with ``values=None``."""
    after = 0
    while after < head_seq:
        seqs = [
            int(s)
            for s in conn.execute(
                select(_EVENTS.c.seq)
                .where(_EVENTS.c.seq > after, _EVENTS.c.seq <= head_seq)
                .order_by(_EVENTS.c.seq)
                .limit(batch_size)
            ).scalars()
        ]
        if not seqs:
            return
        lo, hi = seqs[0], seqs[-1]
        rows = _read_events(conn, lo, hi)
        index: dict[int, set[tuple[str, str]]] = {}
        for entry in conn.execute(
            select(_INDEX.c.event_seq, _INDEX.c.kind, _INDEX.c.record_id).where(
                _INDEX.c.event_seq >= lo, _INDEX.c.event_seq <= hi
            )
        ):
            index.setdefault(int(entry.event_seq), set()).add((entry.kind, entry.record_id))
        yield [(seq, rows.get(seq), frozenset(index.get(seq, ()))) for seq in seqs]
        after = hi


def _read_events(conn: Session | Connection, lo: int, hi: int) -> dict[int, dict[str, Any]]:
    query = select(_EVENTS).where(_EVENTS.c.seq >= lo, _EVENTS.c.seq <= hi)
    try:
        return {int(row.seq): _as_dict(row) for row in conn.execute(query)}
    except (ValueError, TypeError):
        # One undecodable row spoils the batch; read the rows one at a time instead.
        rows: dict[int, dict[str, Any]] = {}
        for seq in conn.execute(
            select(_EVENTS.c.seq).where(_EVENTS.c.seq >= lo, _EVENTS.c.seq <= hi)
        ).scalars():
            try:
                row = conn.execute(select(_EVENTS).where(_EVENTS.c.seq == seq)).one()
            except (ValueError, TypeError):
                continue
            rows[int(seq)] = _as_dict(row)
        return rows


def _as_dict(row: Row[Any]) -> dict[str, Any]:
    return dict(row._mapping)
