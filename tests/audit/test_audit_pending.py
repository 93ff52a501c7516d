"""Reads log their events without waiting for the chain; the sealer chains every one, once.

A read's audit event is committed as a pending row, taking no lock, and the sealer (the
maintenance thread, and every read of the log) appends pending events to the chain in
order and removes them in the same transaction. Incidents are invented test data.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import create_engine, select, text

from app.audit.chain import AUDIT_CHAIN_LOCK_KEY, pending_status, seal_pending, verify
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.ops.maintenance import Maintenance
from tests.conftest import build_app, example_incident


@pytest.fixture
def world(
    fresh_database: Database, make_key_fresh: Any
) -> Iterator[tuple[TestClient, dict[str, str], str]]:
    # The maintenance thread would seal on its own within a second; the tests seal when
    # they choose (a long interval keeps it out of the way).
    settings = Settings(
        environment="test", database_url=fresh_database.url, maintenance_interval_seconds=60
    )
    submitter = make_key_fresh(fresh_database)
    triage = make_key_fresh(fresh_database, "triage")
    with TestClient(build_app(settings, fresh_database, None)) as client:
        created = client.post("/v1/incidents", json=example_incident(), headers=submitter)
        assert created.status_code == 201, created.text
        yield client, triage, created.json()["incident_id"]


def consults(database: Database, incident_id: str) -> list[AuditEvent]:
    with database.session() as s:
        return [
            e
            for e in s.scalars(select(AuditEvent).where(AuditEvent.operation == "consult"))
            if incident_id in e.record_ids
        ]


def test_a_read_is_logged_and_chained_once_sealed(
    fresh_database: Database, world: tuple[TestClient, dict[str, str], str]
) -> None:
    client, triage, incident_id = world
    assert client.get(f"/v1/incidents/{incident_id}", headers=triage).status_code == 200
    with fresh_database.session() as s:
        assert pending_status(s).count == 1
    assert consults(fresh_database, incident_id) == []
    assert Maintenance(fresh_database, interval=60).run_once(wait=True) == 1
    [event] = consults(fresh_database, incident_id)
    assert event.purpose == "triage"
    with fresh_database.session() as s:
        assert pending_status(s).count == 0
        assert verify(s).ok


def test_reads_never_wait_for_the_chain_lock(
    fresh_database: Database, world: tuple[TestClient, dict[str, str], str]
) -> None:
    if fresh_database.sqlite:
        pytest.skip("SQLite has one write lock: every write, a read's event too, takes it")
    client, triage, incident_id = world
    holder = create_engine(fresh_database.url)
    with holder.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(:k)"), {"k": AUDIT_CHAIN_LOCK_KEY})
        # A change would wait here for the lock; a read does not.
        for _ in range(3):
            r = client.get(f"/v1/incidents/{incident_id}", headers=triage)
            assert r.status_code == 200, r.text
        with fresh_database.unit() as session:
            assert seal_pending(session, wait=False) == 0  # someone else holds the chain
        conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": AUDIT_CHAIN_LOCK_KEY})
    holder.dispose()
    with fresh_database.unit() as session:
        assert seal_pending(session) == 3
    assert len(consults(fresh_database, incident_id)) == 3


def test_concurrent_sealers_chain_every_event_exactly_once(
    fresh_database: Database, world: tuple[TestClient, dict[str, str], str]
) -> None:
    client, triage, incident_id = world
    for _ in range(40):
        assert client.get(f"/v1/incidents/{incident_id}", headers=triage).status_code == 200
    errors: list[BaseException] = []

    def seal() -> None:
        try:
            Maintenance(fresh_database, interval=60).run_once(wait=True)
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=seal) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    events = consults(fresh_database, incident_id)
    assert len(events) == 40
    assert len({e.id for e in events}) == 40
    with fresh_database.session() as s:
        assert pending_status(s).count == 0
        assert verify(s).ok


def test_the_log_read_by_an_auditor_includes_every_committed_read(
    fresh_database: Database,
    make_key_fresh: Any,
    world: tuple[TestClient, dict[str, str], str],
) -> None:
    client, triage, incident_id = world
    auditor = make_key_fresh(fresh_database, "auditor")
    assert client.get(f"/v1/incidents/{incident_id}", headers=triage).status_code == 200
    listed = client.get(
        "/v1/audit/events", params={"record": incident_id, "operation": "consult"}, headers=auditor
    )
    assert listed.status_code == 200, listed.text
    assert len(listed.json()["events"]) == 1
    verified = client.get("/v1/audit/verify", headers=auditor).json()
    assert verified["ok"] is True
    assert verified["pending_events"] == 0


def test_metrics_show_the_events_waiting_to_be_chained(
    world: tuple[TestClient, dict[str, str], str],
) -> None:
    client, triage, incident_id = world
    client.get(f"/v1/incidents/{incident_id}", headers=triage)
    metrics = client.get("/metrics").text
    assert "triage_audit_pending_events 1.0" in metrics
    assert "triage_audit_oldest_pending_seconds" in metrics
    assert "triage_requests_shed_total" in metrics
