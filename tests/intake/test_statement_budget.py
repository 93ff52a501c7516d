"""What one intake costs the database: a handful of set-wise reads and one batched insert
per table, on both backends (counted at the driver, so every statement is seen; those of
the app's maintenance thread, which seals audit events on its own clock, are not the
intake's)."""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from app.config import Settings
from app.db import Database
from tests.conftest import build_app, example_incident

# Issue 10: at most 20 statements for a new incident with four persons.
NEW_INCIDENT_BUDGET = 20


@contextmanager
def counted(database: Database) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if threading.current_thread().name != "triage-maintenance":  # app.ops.maintenance
            statements.append(" ".join(statement.split()[:3]))

    event.listen(database.engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(database.engine, "before_cursor_execute", count)


def new_people(body: dict[str, Any], tag: str) -> dict[str, Any]:
    """The same incident about other people (invented): new reference, PNC ids and names."""
    body = copy.deepcopy(body)
    body["source"]["reference"] = f"BUDGET-{tag}"
    for n, person in enumerate(body["persons"]):
        if person.get("name"):
            person["name"]["family"] += tag
        for identifier in person.get("identifiers", []):
            identifier["value"] = f"{n + 10}/{abs(hash(tag)) % 10**6}{'ABCD'[n]}"
    return body


@pytest.fixture
def client(fresh_database: Database) -> Iterator[TestClient]:
    app = build_app(
        Settings(environment="test", database_url=fresh_database.url), fresh_database, None
    )
    with TestClient(app) as c:
        yield c


def test_a_new_incident_about_four_new_people_takes_at_most_20_statements(
    client: TestClient, fresh_database: Database, make_key_fresh: Any
) -> None:
    headers = make_key_fresh(fresh_database)
    warm = client.post(
        "/v1/incidents", json=new_people(example_incident(), "warm"), headers=headers
    )
    assert warm.status_code == 201, warm.text  # key cached, definitions recorded
    body = new_people(example_incident(), "count")
    assert len(body["persons"]) == 4
    with counted(fresh_database) as statements:
        r = client.post("/v1/incidents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    assert len(statements) <= NEW_INCIDENT_BUDGET, statements
    inserts = [s for s in statements if s.startswith("INSERT INTO")]
    # One batched insert per table written, never one per row.
    assert len(inserts) == len(set(inserts)), inserts


def test_a_replay_and_a_known_victim_stay_cheap(
    client: TestClient, fresh_database: Database, make_key_fresh: Any
) -> None:
    headers = make_key_fresh(fresh_database)
    first = example_incident()
    assert client.post("/v1/incidents", json=first, headers=headers).status_code == 201
    with counted(fresh_database) as replay:
        assert client.post("/v1/incidents", json=first, headers=headers).status_code == 200
    assert len(replay) <= 12, replay
    # The same people again, a week later: their history is read in a few set-wise reads.
    again = copy.deepcopy(first)
    again["source"]["reference"] = "BUDGET-again"
    again["occurred_at"] = "2026-11-27T22:15:00Z"
    again["reported_at"] = "2026-11-27T22:31:00Z"
    with counted(fresh_database) as known:
        r = client.post("/v1/incidents", json=again, headers=headers)
    assert r.status_code == 201, r.text
    assert len(known) <= NEW_INCIDENT_BUDGET + 2, known
    assert r.json()["assessment"]["history"], "the stored history was read"
