"""New record ids are UUID version 7: unguessable, and in the order they were made."""

from __future__ import annotations

import time

from app.db import new_id


def test_new_ids_are_version_7_with_the_rfc_variant() -> None:
    ids = [new_id() for _ in range(1000)]
    assert {i.version for i in ids} == {7}
    assert {i.variant for i in ids} == {"specified in RFC 4122"}
    assert len(set(ids)) == 1000


def test_new_ids_carry_the_time_they_were_made_in_their_order() -> None:
    before = time.time_ns() // 1_000_000
    first = new_id()
    time.sleep(0.002)
    second = new_id()
    after = time.time_ns() // 1_000_000
    assert before <= first.int >> 80 <= second.int >> 80 <= after
    assert first < second  # and so sort in time order, as text too on SQLite
    assert first.hex < second.hex
