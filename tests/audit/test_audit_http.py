"""The statutory log over HTTP (DPA 2018 s.62): what each request writes, and the auditor's
routes to read, export and verify it.

Listing runs inside the test transaction; export and verify read through a separate
read-only connection, so those tests use ``fresh_database`` with real commits. All data is
invented test data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from app.audit.chain import GENESIS_HASH, compute_hash, seal_all
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from tests.auth import scenario
from tests.auth.scenario import (
    AREA_A,
    PROBLEM,
    incident_body,
    post_incident,
    set_flags,
    unlinked,
)
from tests.conftest import KeyMaker, build_app

# One application for this module instead of one per test (see tests/auth/scenario.py).
client = scenario.client
module_app = scenario.module_app

PURPOSE = "marac:MARAC-2026-0147"
# Strings of the example incident that must never reach the log (invented data).
PERSONAL = ("Amira", "Hale", "Crewe", "94/118822K", "08/552190B", "1994-03-02", "stepdad")


def events(session: Session, **where: Any) -> list[AuditEvent]:
    seal_all(session)  # reads' events wait to be chained on PostgreSQL
    query = select(AuditEvent).order_by(AuditEvent.seq)
    for name, value in where.items():
        query = query.where(getattr(AuditEvent, name) == value)
    return list(session.scalars(query))


def n_events(session: Session) -> int:
    seal_all(session)
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return {**make_key("triage", areas=[AREA_A]), "X-Purpose": PURPOSE}


@pytest.fixture
def auditor(make_key: KeyMaker) -> dict[str, str]:
    return {**make_key("auditor"), "X-Purpose": "audit"}


@pytest.fixture
def incident_id(client: TestClient, submitter: dict[str, str]) -> str:
    return post_incident(client, submitter, incident_body())


# --------------------------------------------------------------------------- what requests log


def test_intake_writes_a_collect_event_and_a_replay_a_consult(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    body = incident_body()
    first = client.post("/v1/incidents", json=body, headers=submitter)
    again = client.post("/v1/incidents", json=body, headers=submitter)
    assert (first.status_code, again.status_code) == (201, 200)
    iid = first.json()["incident_id"]
    logged = [e for e in events(session, record_type="incident") if iid in e.record_ids]
    assert [e.operation for e in logged] == ["collect", "consult"]
    assert logged[0].request_id == first.headers["x-request-id"]
    assert len(logged[0].person_ids) == 4


def test_every_read_of_an_incident_writes_a_consult_event_with_purpose_and_request_id(
    client: TestClient, triage: dict[str, str], incident_id: str, session: Session
) -> None:
    for request_id in ("req-audit-test-0001", None):
        headers = {**triage, **({"X-Request-ID": request_id} if request_id else {})}
        before = n_events(session)
        r = client.get(f"/v1/incidents/{incident_id}", headers=headers)
        assert r.status_code == 200
        assert n_events(session) == before + 1
        event = events(session)[-1]
        assert event.operation == "consult"
        assert event.record_type == "incident"
        assert event.record_ids == [incident_id]
        assert sorted(event.person_ids) == sorted(p["person_id"] for p in r.json()["persons"])
        assert event.purpose == PURPOSE
        assert event.request_id == r.headers["x-request-id"]
        if request_id:
            assert event.request_id == request_id
        assert event.role == "triage"
        assert event.principal_id.startswith("key:")
        assert event.route == "GET /v1/incidents/{incident_id}"
        assert event.recipients == []
        assert len(event.digest) == 64
        stored = json.dumps([event.detail, event.record_ids, event.person_ids, event.purpose])
        assert not [s for s in PERSONAL if s in stored]


def test_a_read_without_a_purpose_is_400_and_logs_nothing_and_an_over_long_one_422(
    client: TestClient, triage: dict[str, str], incident_id: str, session: Session
) -> None:
    for purpose in (None, "", "   "):
        headers = {k: v for k, v in triage.items() if k != "X-Purpose"}
        if purpose is not None:
            headers["X-Purpose"] = purpose
        before = n_events(session)
        r = client.get(f"/v1/incidents/{incident_id}", headers=headers)
        assert r.status_code == 400, purpose
        assert r.headers["content-type"] == PROBLEM
        assert r.json()["type"].endswith("/purpose-required")
        assert n_events(session) == before
    r = client.get(f"/v1/incidents/{incident_id}", headers={**triage, "X-Purpose": "x" * 201})
    assert r.status_code == 422  # longer than the log keeps
    assert r.headers["content-type"] == PROBLEM


def test_an_agency_read_writes_a_consult_and_a_disclose_to_that_agency(
    client: TestClient,
    make_key: KeyMaker,
    incident_id: str,
    session: Session,
) -> None:
    set_flags(session, incident_id, ("school", "c1"))
    # The school of the incident's child c1 (the contract's example).
    school = {
        **make_key("agency", agency="school", areas=[AREA_A], schools=["100123"]),
        "X-Purpose": PURPOSE,
    }
    before = n_events(session)
    r = client.get(f"/v1/incidents/{incident_id}", headers=school)
    assert r.status_code == 200
    consult, disclose = events(session)[before:]
    assert (consult.operation, disclose.operation) == ("consult", "disclose")
    assert consult.recipients == []
    assert disclose.recipients == ["agency:school"]
    for event in (consult, disclose):
        assert (event.role, event.agency) == ("agency", "school")
        assert event.purpose == PURPOSE
        assert event.request_id == r.headers["x-request-id"]
        assert event.record_ids == [incident_id]
    # Only the flagged child's person id: that is what was disclosed.
    assert disclose.person_ids == [r.json()["persons"][0]["person_id"]]
    assert consult.digest == disclose.digest


def test_a_refused_read_logs_nothing(
    client: TestClient, make_key: KeyMaker, incident_id: str, session: Session
) -> None:
    before = n_events(session)
    other_area = make_key("triage", areas=["E09000019"])
    assert client.get(f"/v1/incidents/{incident_id}", headers=other_area).status_code == 404
    assert client.get(f"/v1/incidents/{incident_id}", headers=make_key("admin")).status_code == 403
    assert n_events(session) == before


# --------------------------------------------------------------------------- listing


def _list(client: TestClient, auditor: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/v1/audit/events", params=params, headers=auditor)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


@pytest.fixture
def busy_log(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
) -> dict[str, Any]:
    """Two incidents, each read twice by triage: a log with something to filter."""
    ids = [post_incident(client, submitter, unlinked(incident_body())) for _ in range(2)]
    persons = {}
    for iid in ids:
        for _ in range(2):
            r = client.get(f"/v1/incidents/{iid}", headers=triage)
            assert r.status_code == 200
            persons[iid] = [p["person_id"] for p in r.json()["persons"]]
    return {"ids": ids, "persons": persons}


def test_listing_filters_by_record_person_actor_operation_and_time(
    client: TestClient, auditor: dict[str, str], busy_log: dict[str, Any]
) -> None:
    first, second = busy_log["ids"]
    # record
    page = _list(client, auditor, record=first)["events"]
    assert [e["operation"] for e in page] == ["collect", "consult", "consult"]
    assert all(first in e["record_ids"] and second not in e["record_ids"] for e in page)
    # person
    child = busy_log["persons"][first][2]
    page = _list(client, auditor, person=child)["events"]
    assert page
    assert all(child in e["person_ids"] for e in page)
    # actor and operation
    reader = _list(client, auditor, operation="consult", record=first)["events"][0]["principal_id"]
    by_reader = _list(client, auditor, actor=reader)["events"]
    assert len(by_reader) == 4  # two reads of each incident
    assert {e["principal_id"] for e in by_reader} == {reader}
    collects = _list(client, auditor, operation="collect")["events"]
    assert len(collects) == 2
    assert {e["operation"] for e in collects} == {"collect"}
    # time range: from inclusive, to exclusive
    everything = _list(client, auditor, record=second)["events"]
    assert len(everything) == 3
    middle = everything[1]["occurred_at"]
    after = _list(client, auditor, record=second, **{"from": middle})["events"]
    before = _list(client, auditor, record=second, to=middle)["events"]
    assert [e["seq"] for e in after] == [e["seq"] for e in everything[1:]]
    assert [e["seq"] for e in before] == [everything[0]["seq"]]
    # ids and digests only, never the personal data
    r = client.get("/v1/audit/events", params={"limit": 500}, headers=auditor)
    assert not [s for s in PERSONAL if s in r.text]
    fields = set(r.json()["events"][0])
    assert {"seq", "principal_id", "operation", "purpose", "request_id", "digest"} <= fields
    assert {"hash", "prev_hash"} <= fields


def test_listing_pages_with_a_cursor_in_chain_order(
    client: TestClient, auditor: dict[str, str], busy_log: dict[str, Any]
) -> None:
    whole = _list(client, auditor, operation="consult", limit=500)
    assert whole["next_cursor"] is None
    seen: list[int] = []
    after = 0
    while True:
        page = _list(client, auditor, operation="consult", limit=2, after=after)
        seen += [e["seq"] for e in page["events"]]
        assert len(page["events"]) <= 2
        if page["next_cursor"] is None:
            break
        after = page["next_cursor"]
    # Listing logs consults as it goes: every page sees at least the original ones.
    original = [e["seq"] for e in whole["events"]]
    assert seen[: len(original)] == original
    assert seen == sorted(set(seen))


def test_reading_the_log_is_itself_logged_with_filter_and_purpose(
    client: TestClient, auditor: dict[str, str], busy_log: dict[str, Any], session: Session
) -> None:
    first = busy_log["ids"][0]
    r = client.get("/v1/audit/events", params={"record": first}, headers=auditor)
    assert r.status_code == 200
    logged = events(session)[-1]
    assert (logged.operation, logged.record_type, logged.role) == ("consult", "audit", "auditor")
    assert logged.purpose == "audit"
    assert logged.request_id == r.headers["x-request-id"]
    assert json.loads(logged.detail["filter"]) == {"record": first}
    assert logged.detail["count"] == 3
    assert logged.record_ids == [e["id"] for e in r.json()["events"]]


def test_invalid_listing_and_verify_parameters_are_422(
    client: TestClient, auditor: dict[str, str]
) -> None:
    for params in (
        {"operation": "delete"},
        {"limit": 0},
        {"limit": 501},
        {"after": -1},
        {"from": "2026-11-20T22:15:00"},  # no offset
        {"record": "x" * 65},
    ):
        r = client.get("/v1/audit/events", params=params, headers=auditor)
        assert r.status_code == 422, params
        assert r.headers["content-type"] == PROBLEM
    for anchor in ("12:nothex", "12", ":" + "a" * 64, "-1:" + "a" * 64):
        r = client.get("/v1/audit/verify", params={"anchor": anchor}, headers=auditor)
        assert r.status_code == 422, anchor
        assert r.headers["content-type"] == PROBLEM


def test_reading_the_log_needs_a_purpose_verifying_it_does_not(
    client: TestClient, auditor: dict[str, str], session: Session
) -> None:
    no_purpose = {k: v for k, v in auditor.items() if k != "X-Purpose"}
    assert client.get("/v1/audit/events", headers=no_purpose).status_code == 400
    assert client.get("/v1/audit/export", headers=no_purpose).status_code == 400
    # Verification returns no personal data: no purpose needed, but one given is kept.
    assert client.get("/v1/audit/verify", headers=no_purpose).status_code == 200
    assert events(session)[-1].purpose is None
    assert client.get("/v1/audit/verify", headers=auditor).status_code == 200
    assert events(session)[-1].purpose == "audit"


# --------------------------------------------------------------------------- export and verify


@pytest.fixture
def committed(fresh_database: Database, make_key_fresh: Any) -> Iterator[dict[str, Any]]:
    """An app on a database of its own with three incidents committed and each read once."""
    settings = Settings(environment="test", database_url=fresh_database.url)
    app = build_app(settings, fresh_database, None)
    submitter = make_key_fresh(fresh_database, "submitter")
    triage = {**make_key_fresh(fresh_database, "triage"), "X-Purpose": PURPOSE}
    auditor = {
        **make_key_fresh(fresh_database, "auditor"),
        "X-Purpose": "subject_access:ICO-2026-0001",
    }
    with TestClient(app, raise_server_exceptions=False) as c:
        ids = [post_incident(c, submitter, unlinked(incident_body())) for _ in range(3)]
        for iid in ids:
            assert c.get(f"/v1/incidents/{iid}", headers=triage).status_code == 200
        yield {"client": c, "auditor": auditor, "ids": ids, "db": fresh_database}


def _export(c: TestClient, auditor: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    r = c.get("/v1/audit/export", params=params, headers=auditor)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/x-ndjson")
    assert r.text.endswith("\n")
    return [json.loads(line) for line in r.text.splitlines()]


def test_export_is_json_lines_that_verify_independently_filter_and_log_themselves(
    committed: dict[str, Any],
) -> None:
    c, auditor, ids = committed["client"], committed["auditor"], committed["ids"]
    lines = _export(c, auditor)
    assert [e["seq"] for e in lines] == list(range(1, len(lines) + 1))
    assert len(lines) == 6  # three collects, three consults
    previous = GENESIS_HASH
    for event in lines:
        assert event["prev_hash"] == previous
        assert compute_hash(event) == event["hash"]
        previous = event["hash"]

    lines = _export(c, auditor, record=ids[1])
    assert [e["operation"] for e in lines] == ["collect", "consult"]
    assert all(ids[1] in e["record_ids"] for e in lines)
    # Each export was logged before it streamed: the next export shows them.
    logged = [e for e in _export(c, auditor, operation="consult") if e["record_type"] == "audit"]
    assert len(logged) == 2
    assert {e["purpose"] for e in logged} == {"subject_access:ICO-2026-0001"}
    assert all(e["detail"]["export"] is True for e in logged)
    assert json.loads(logged[1]["detail"]["filter"]) == {"record": ids[1]}


def _verify(c: TestClient, auditor: dict[str, str], **params: Any) -> dict[str, Any]:
    r = c.get("/v1/audit/verify", params=params, headers=auditor)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _drop_events(db: Database, first: int, last: int) -> None:
    """Delete events ``first``..``last`` (and their index rows) behind the service's back."""
    bounds = {"first": first, "last": last}
    with db.engine.begin() as conn:
        conn.execute(
            text("DELETE FROM audit_event_records WHERE event_seq BETWEEN :first AND :last"),
            bounds,
        )
        conn.execute(text("DELETE FROM audit_events WHERE seq BETWEEN :first AND :last"), bounds)


def test_verify_names_the_first_edited_or_deleted_event_and_is_itself_logged(
    committed: dict[str, Any],
) -> None:
    c, auditor, db = committed["client"], committed["auditor"], committed["db"]
    intact = _verify(c, auditor)
    assert intact["ok"] is True
    assert intact["first_broken_seq"] is None
    assert intact["events_checked"] == intact["head_seq"] == 6
    anchor = f"{intact['head_seq']}:{intact['head_hash']}"
    again = _verify(c, auditor, anchor=anchor)
    assert again["ok"] is True
    assert again["head_seq"] == 7  # the first verification was logged

    # A row edited by hand in the database.
    with db.engine.begin() as conn:
        original = conn.execute(text("SELECT purpose FROM audit_events WHERE seq = 4")).scalar()
        conn.execute(text("UPDATE audit_events SET purpose = 'nothing to see' WHERE seq = 4"))
    edited = _verify(c, auditor)
    assert (edited["ok"], edited["first_broken_seq"]) == (False, 4)
    assert "altered" in edited["reason"]
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET purpose = :p WHERE seq = 4"), {"p": original})
    assert _verify(c, auditor)["ok"] is True

    # A clean cut of the tail looks whole, except against an anchor kept elsewhere.
    later = _verify(c, auditor)
    _drop_events(db, later["head_seq"] - 1, later["head_seq"] + 1)
    assert _verify(c, auditor)["ok"] is True
    cut = _verify(c, auditor, anchor=f"{later['head_seq']}:{later['head_hash']}")
    assert cut["ok"] is False
    assert "anchor" in cut["reason"]

    # A row deleted from the middle.
    _drop_events(db, 3, 3)
    deleted = _verify(c, auditor)
    assert (deleted["ok"], deleted["first_broken_seq"]) == (False, 3)


def test_export_and_verify_see_only_committed_events(
    client: TestClient, auditor: dict[str, str], incident_id: str
) -> None:
    # Inside the test transaction nothing is committed: the read-only connection sees
    # an empty chain, and says so rather than failing.
    assert client.get("/v1/audit/verify", headers=auditor).json()["ok"] is True
    r = client.get("/v1/audit/export", headers=auditor)
    assert r.status_code == 200
    assert uuid.UUID(incident_id)
    assert incident_id not in r.text
