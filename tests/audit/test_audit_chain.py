"""The audit hash chain: appends link correctly and any tampering is detected and located."""

from __future__ import annotations

import hashlib
import threading
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, func, select, text, update

from app.audit import AuditEvent, AuditEventRecord, append, digest_of, head, verify
from app.audit.chain import GENESIS_HASH, compute_hash, event_as_json
from app.audit.queries import EventFilter, list_events, read_snapshot
from app.db import Database

EVENTS = AuditEvent.__table__
INDEX = AuditEventRecord.__table__


def _rows(db: Database) -> list[dict[str, Any]]:
    with db.engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(select(EVENTS).order_by(EVENTS.c.seq))]


def _raw_update(db: Database, seq: int, **values: Any) -> None:
    """Tamper directly in the database, bypassing the application."""
    with db.engine.begin() as conn:
        conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(**values))


def _raw_delete(db: Database, seq: int) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(INDEX).where(INDEX.c.event_seq == seq))
        conn.execute(delete(EVENTS).where(EVENTS.c.seq == seq))


def _reset(db: Database) -> None:
    with db.engine.begin() as conn:
        conn.execute(delete(INDEX))
        conn.execute(delete(EVENTS))


def _verify(db: Database, **kwargs: Any) -> Any:
    with db.session() as session:
        return verify(session, **kwargs)


# --- appending --------------------------------------------------------------------------------


def test_empty_chain_verifies_with_genesis_head(db: Database) -> None:
    result = _verify(db)
    assert result.ok
    assert (result.events_checked, result.head_seq, result.head_hash) == (0, 0, GENESIS_HASH)
    assert result.first_broken_seq is None
    assert result.reason is None
    assert _verify(db, anchor=(0, GENESIS_HASH)).ok


def test_appends_link_each_event_to_the_previous_one(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 3)

    rows = _rows(db)
    assert [r["seq"] for r in rows] == [1, 2, 3]
    assert rows[0]["prev_hash"] == GENESIS_HASH
    assert rows[1]["prev_hash"] == rows[0]["hash"]
    assert rows[2]["prev_hash"] == rows[1]["hash"]
    for row in rows:
        assert row["hash"] == compute_hash(row)
    result = _verify(db)
    assert result.ok
    assert (result.events_checked, result.head_seq, result.head_hash) == (3, 3, rows[2]["hash"])
    with db.session() as session:
        assert head(session) == (3, rows[2]["hash"])


def test_append_returns_the_flushed_event_with_its_index_rows(
    db: Database, make_entry: Callable[..., Any]
) -> None:
    with db.session() as session:
        event = append(session, make_entry(7, record_ids=["incident-7", "incident-7"]))
        assert (event.seq, event.prev_hash) == (1, GENESIS_HASH)
        assert event.hash == compute_hash(event_as_json(event))
        session.commit()
    with db.engine.connect() as conn:
        index = set(conn.execute(select(INDEX.c.event_seq, INDEX.c.kind, INDEX.c.record_id)))
    # A repeated record id is indexed once; the hashed list keeps what the caller gave.
    assert index == {
        (1, "record", "incident-7"),
        (1, "person", "person-7"),
        (1, "person", "person-8"),
    }
    assert _rows(db)[0]["record_ids"] == ["incident-7", "incident-7"]


def test_append_never_commits_so_a_rollback_leaves_no_event(
    db: Database, make_entry: Callable[..., Any]
) -> None:
    with db.session() as session:
        append(session, make_entry(1))
        session.rollback()
    with db.session() as session:
        assert head(session) == (0, GENESIS_HASH)


def test_several_appends_in_one_transaction_chain_in_order(
    db: Database, make_entry: Callable[..., Any], append_committed: Callable[..., None]
) -> None:
    append_committed(db, 2)
    with db.session() as session:
        events = [append(session, make_entry(n)) for n in range(10, 14)]
        session.commit()
    assert [e.seq for e in events] == [3, 4, 5, 6]
    assert all(b.prev_hash == a.hash for a, b in pairwise(events))
    assert _verify(db).events_checked == 6


def test_stored_content_round_trips_to_the_same_hash_on_each_backend(
    db: Database, make_entry: Callable[..., Any]
) -> None:
    """JSONB reorders keys and the databases store times differently; the hash must not care."""
    person = uuid.uuid4()
    entry = make_entry(
        1,
        person_ids=[person],
        detail={
            "z": [1, {"b": None, "a": True}],
            "counts": {"children": 3, "big": 2**53 - 1, "negative": -5},
            "note": "é ü ∑ \u2028 “quoted”",
            "empty": {},
        },
        occurred_at=datetime(2026, 3, 29, 1, 30, 0, 999, tzinfo=timezone(timedelta(hours=1))),
        agency=None,
        purpose=None,
        request_id=None,
        route=None,
    )
    with db.session() as session:
        append(session, entry)
        session.commit()

    (row,) = _rows(db)
    assert row["occurred_at"] == datetime(2026, 3, 29, 0, 30, 0, 999, tzinfo=UTC)
    assert row["person_ids"] == [str(person)]
    assert row["hash"] == compute_hash(row)
    assert _verify(db).ok


@pytest.mark.parametrize("batch_size", [1, 2, 3, 11, 5000])
def test_verify_walks_in_batches_and_still_finds_the_first_break(
    db: Database, append_committed: Callable[..., None], batch_size: int
) -> None:
    append_committed(db, 11)
    assert _verify(db, batch_size=batch_size).events_checked == 11
    _raw_update(db, 7, principal_id="key:intruder")
    result = _verify(db, batch_size=batch_size)
    assert (result.ok, result.first_broken_seq, result.events_checked) == (False, 7, 6)


def test_verify_accepts_a_connection(db: Database, append_committed: Callable[..., None]) -> None:
    append_committed(db, 3)
    with db.engine.connect() as conn:
        assert verify(conn).events_checked == 3


# --- tampering ------------------------------------------------------------------------------

# For every stored field, a tampered value of the right type.
TAMPERED: dict[str, Callable[[Any], Any]] = {
    "id": lambda _old: uuid.uuid4(),
    "occurred_at": lambda old: old + timedelta(microseconds=1),
    "principal_id": lambda _old: "key:someone-else",
    "role": lambda _old: "admin",
    "agency": lambda _old: None,
    "operation": lambda _old: "erase",
    "record_type": lambda _old: "flag",
    "record_ids": lambda old: [*old[:-1], "incident-forged"],
    "person_ids": lambda old: old[:1],
    "purpose": lambda _old: "curiosity",
    "recipients": lambda _old: ["agency:elsewhere"],
    "request_id": lambda _old: "req-forged",
    "route": lambda _old: "/v1/persons/{person_id}",
    "digest": lambda _old: digest_of("something else was returned"),
    "detail": lambda old: {**old, "persons": 3},
    "prev_hash": lambda _old: digest_of("a forged link"),
    "hash": lambda _old: digest_of("a forged hash"),
}


def test_tampering_table_covers_every_stored_field() -> None:
    assert set(TAMPERED) | {"seq"} == {c.name for c in EVENTS.columns}


@pytest.mark.parametrize("field", sorted(TAMPERED))
def test_editing_any_field_of_any_event_is_detected_at_that_event(
    db: Database, append_committed: Callable[..., None], field: str
) -> None:
    for seq in (1, 3, 5):
        _reset(db)
        append_committed(db, 5)
        original = _rows(db)[seq - 1][field]
        _raw_update(db, seq, **{field: TAMPERED[field](original)})

        result = _verify(db)

        assert not result.ok
        assert result.first_broken_seq == seq, (field, seq, result)
        assert result.events_checked == seq - 1
        expected = "prev_hash does not match" if field == "prev_hash" else "hash mismatch"
        assert result.reason is not None
        assert result.reason.startswith(expected)


def test_editing_with_a_literal_sql_statement_is_detected(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 4)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET purpose = 'routine' WHERE seq = 2"))
    result = _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert result.reason == "hash mismatch: content altered"


def test_editing_and_rehashing_one_event_breaks_the_next_link(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 4)
    row = _rows(db)[1]
    row["principal_id"] = "key:someone-else"
    _raw_update(db, 2, principal_id=row["principal_id"], hash=compute_hash(row))
    result = _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert result.reason == "prev_hash does not match previous event (event 2)"


def test_changing_an_event_seq_is_detected_as_a_gap(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 5)
    with db.engine.begin() as conn:
        conn.execute(delete(INDEX).where(INDEX.c.event_seq == 3))
        conn.execute(update(EVENTS).where(EVENTS.c.seq == 3).values(seq=1003))
    result = _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert result.reason == "sequence gap: event 3 missing"


def test_deleting_a_middle_event_is_detected(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 6)
    _raw_delete(db, 4)
    result = _verify(db)
    assert (result.ok, result.first_broken_seq, result.events_checked) == (False, 4, 3)
    assert result.reason == "sequence gap: event 4 missing"


def test_deleting_a_middle_event_and_renumbering_the_rest_is_detected(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 5)
    _raw_delete(db, 3)
    with db.engine.begin() as conn:
        for seq in (4, 5):
            conn.execute(delete(INDEX).where(INDEX.c.event_seq == seq))
            conn.execute(update(EVENTS).where(EVENTS.c.seq == seq).values(seq=seq - 1))
    result = _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 3)
    assert result.reason is not None
    assert result.reason.startswith("prev_hash does not match")


def test_deleting_an_index_row_to_hide_an_event_from_searches_is_detected(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 3)
    with db.engine.begin() as conn:
        conn.execute(delete(INDEX).where(INDEX.c.event_seq == 2, INDEX.c.record_id == "person-2"))
    result = _verify(db)
    assert (result.ok, result.first_broken_seq) == (False, 2)
    assert result.reason == "record index does not match event content"


def test_deleting_the_tail_is_detected_only_with_an_anchor(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 5)
    anchor = _verify(db).head_seq, _verify(db).head_hash
    _raw_delete(db, 5)
    _raw_delete(db, 4)

    # Without an anchor a shorter chain is indistinguishable from a younger one.
    assert _verify(db).ok
    result = _verify(db, anchor=anchor)
    assert (result.ok, result.first_broken_seq, result.head_seq) == (False, 4, 3)
    assert result.reason == "anchor check failed: event 5 missing (chain truncated after event 3)"


def test_a_consistently_rewritten_chain_is_detected_only_with_an_anchor(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 5)
    before = _verify(db)
    anchor = before.head_seq, before.head_hash

    # An intruder with write access edits event 2 and recomputes every hash after it.
    rows = _rows(db)
    rows[1]["purpose"] = "routine"
    previous = rows[0]["hash"]
    for row in rows[1:]:
        row["prev_hash"] = previous
        row["hash"] = previous = compute_hash(row)
        _raw_update(
            db, row["seq"], purpose=row["purpose"], prev_hash=row["prev_hash"], hash=row["hash"]
        )

    assert _verify(db).ok  # internally consistent again
    result = _verify(db, anchor=anchor)
    assert (result.ok, result.first_broken_seq) == (False, 5)
    assert (
        result.reason
        == "anchor check failed: event 5 hash differs from the anchor (chain rewritten)"
    )


def test_an_older_anchor_still_matches_after_the_chain_grows(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 3)
    old = _verify(db)
    append_committed(db, 4, start=3)
    result = _verify(db, anchor=(old.head_seq, old.head_hash))
    assert result.ok
    assert result.head_seq == 7
    assert not _verify(db, anchor=(3, digest_of("not the head"))).ok


# --- reading --------------------------------------------------------------------------------


def test_record_and_person_filters_use_the_index_table(
    db: Database, append_committed: Callable[..., None]
) -> None:
    append_committed(db, 6)
    with db.session() as session:
        by_record = list_events(session, EventFilter(record="incident-2"))
        by_person = list_events(session, EventFilter(person="person-3"))
        both = list_events(session, EventFilter(person="person-3", record="incident-3"))
        page = list_events(session, EventFilter(principal_id="key:submitter-0"), after_seq=1)
        timed = list_events(
            session,
            EventFilter(
                occurred_from=datetime(2026, 3, 1, 9, 30, 1, 123456, tzinfo=UTC),
                occurred_to=datetime(2026, 3, 1, 9, 30, 3, 123456, tzinfo=UTC),
            ),
        )
    assert [e.seq for e in by_record] == [3]
    assert [e.seq for e in by_person] == [3, 4]  # person-n and person-(n+1)
    assert [e.seq for e in both] == [4]
    assert [e.seq for e in page] == [4]
    assert [e.seq for e in timed] == [2, 3]


def test_a_read_snapshot_neither_blocks_appends_nor_sees_them(
    db: Database, make_entry: Callable[..., Any], append_committed: Callable[..., None]
) -> None:
    append_committed(db, 2)
    with read_snapshot(db.engine) as conn:
        assert conn.execute(select(func.count()).select_from(EVENTS)).scalar_one() == 2

        def append_one() -> None:
            with db.session() as session:
                append(session, make_entry(9))
                session.commit()

        writer = threading.Thread(target=append_one)
        writer.start()
        writer.join(timeout=10)
        assert not writer.is_alive(), "an open read snapshot blocked an append"
        assert verify(conn).head_seq == 2  # still the snapshot taken before the append
    assert _verify(db).head_seq == 3


# --- input validation -----------------------------------------------------------------------


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Any:
    database = Database(f"sqlite:///{tmp_path / 'validation.db'}")
    from app.db import Base

    Base.metadata.create_all(database.engine, tables=[EVENTS, INDEX])
    yield database
    database.dispose()


@pytest.mark.parametrize(
    ("overrides", "error"),
    [
        ({"operation": "browse"}, ValueError),
        ({"record_type": "Incident Report"}, ValueError),
        ({"digest": "not-a-digest"}, ValueError),
        ({"digest": "A" * 64}, ValueError),
        ({"occurred_at": datetime(2026, 1, 1, 12, 0)}, ValueError),
        ({"detail": {"probability": 0.73}}, TypeError),
        ({"detail": {"big": 2**60}}, ValueError),
        ({"detail": {1: "non-string key"}}, TypeError),
        ({"record_ids": "incident-1"}, TypeError),
        ({"principal_id": ""}, ValueError),
        ({"purpose": "x" * 201}, ValueError),
        ({"route": "/v1/\x00"}, ValueError),
    ],
)
def test_entries_that_would_not_hash_identically_after_storage_are_rejected(
    sqlite_db: Database, make_entry: Callable[..., Any], overrides: dict[str, Any], error: type
) -> None:
    with sqlite_db.session() as session:
        with pytest.raises(error):
            append(session, make_entry(1, **overrides))
        assert head(session) == (0, GENESIS_HASH)


def test_digest_of_is_sha256_of_canonical_json() -> None:
    assert digest_of({"b": 1, "a": "x"}) == hashlib.sha256(b'{"a":"x","b":1}').hexdigest()
    assert digest_of({"a": "x", "b": 1}) == digest_of({"b": 1, "a": "x"})
    when = datetime(2026, 1, 1, 13, 0, tzinfo=timezone(timedelta(hours=1)))
    assert digest_of({"t": when}) == digest_of({"t": "2026-01-01T12:00:00.000000Z"})
    ident = uuid.uuid4()
    assert digest_of([ident]) == digest_of([str(ident)])


_TEXT = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=12)
_DETAIL_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53) + 1, 2**53 - 1) | _TEXT,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(_TEXT, children, max_size=3),
    max_leaves=8,
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    detail=st.dictionaries(_TEXT, _DETAIL_VALUES, max_size=4),
    ids=st.lists(_TEXT.filter(bool), max_size=3),
)
def test_any_accepted_entry_still_verifies_after_a_round_trip_through_the_database(
    db: Database, make_entry: Callable[..., Any], detail: dict[str, Any], ids: list[str]
) -> None:
    """Unicode keys (JCS sorts by UTF-16, JSONB by length), nesting, the integer range: once
    ``append`` accepts an entry, the stored event must hash identically when read back."""
    with db.session() as session:
        event = append(session, make_entry(1, detail=detail, record_ids=ids, recipients=ids))
        session.commit()
    with db.session() as session:
        result = verify(session)
    assert result.ok, result
    assert result.head_seq == event.seq
