"""Incident intake: validation, replays, idempotency keys, atomicity (both backends)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.incidents import models
from tests.conftest import KeyMaker, build_app, example_incident

PROBLEM = "application/problem+json"


def count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


def post(client: TestClient, headers: dict[str, str], body: Any, **extra: str) -> Any:
    return client.post("/v1/incidents", json=body, headers={**headers, **extra})


def test_intake_returns_201_with_location_and_stores_one_incident(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], session: Session
) -> None:
    r = post(client, submitter, incident)
    assert r.status_code == 201, r.text
    body = r.json()
    assert r.headers["location"] == f"/v1/incidents/{body['incident_id']}"
    assert body["version"] == 1
    assert count(session, models.Incident) == 1
    assert count(session, models.IncidentPerson) == 4
    stored = session.scalar(select(models.IncidentSubmission))
    assert stored is not None
    # The raw payload is kept verbatim for audit.
    assert stored.body_raw == r.request.content.decode()


def test_identical_replay_returns_200_with_the_original_result(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], session: Session
) -> None:
    first = post(client, submitter, incident)
    # Same document, different key order and whitespace: still identical.
    reordered = dict(reversed(list(incident.items())))
    second = client.post(
        "/v1/incidents",
        content=__import__("json").dumps(reordered, indent=4),
        headers={**submitter, "Content-Type": "application/json"},
    )
    assert second.status_code == 200
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]
    assert count(session, models.Incident) == 1


def test_changed_body_with_same_reference_is_409_naming_the_existing_incident(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], session: Session
) -> None:
    first = post(client, submitter, incident).json()
    incident["victim_checklist"]["answers"]["isolated"] = "yes"
    r = post(client, submitter, incident)
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["incident_id"] == first["incident_id"]
    assert count(session, models.Incident) == 1


def test_unknown_field_is_a_422_problem_without_echoing_values(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], session: Session
) -> None:
    incident["persons"][0]["nickname"] = "Zebedee-Quartz"
    r = post(client, submitter, incident)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM
    problem = r.json()
    assert problem["status"] == 422
    assert problem["type"].endswith("/validation")
    # The location is named; the unknown key is the client's, so it is not quoted.
    assert {
        "loc": ["persons", 0, "<unrecognised key>"],
        "msg": "Extra inputs are not permitted",
    } in problem["errors"]
    assert "Zebedee" not in r.text
    assert count(session, models.Incident) == 0


@pytest.mark.parametrize(
    ("mutate", "loc_part"),
    [
        (lambda d: d.__setitem__("occurred_at", "2026-11-20T22:15:00"), "occurred_at"),
        (lambda d: d["relationship"].__setitem__("victim", "v9"), "body"),
        (lambda d: d["persons"][1].__setitem__("role", "victim"), "body"),
        (lambda d: d["persons"][0].__setitem__("child", {"present": True}), "persons"),
        (lambda d: d["victim_checklist"]["answers"].__setitem__("isolated", "maybe"), "isolated"),
        (lambda d: d["victim_checklist"]["answers"].__setitem__("made_up_item", "yes"), ""),
        (
            lambda d: d["officer_assessment"].__setitem__("professional_judgement", "high"),
            "officer_assessment",
        ),
        (lambda d: d["victim_checklist"].__setitem__("instrument", "dara"), "instrument"),
        (lambda d: d["persons"].append(dict(d["persons"][2])), "body"),
    ],
    ids=[
        "time-without-offset",
        "relationship-ref-absent",
        "two-victims",
        "child-details-on-adult",
        "answer-not-in-vocabulary",
        "unknown-checklist-item",
        "judgement-without-rationale",
        "unknown-instrument",
        "duplicate-person-ref",
    ],
)
def test_invalid_incidents_are_rejected_whole_with_422(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    session: Session,
    mutate: Any,
    loc_part: str,
) -> None:
    mutate(incident)
    r = post(client, submitter, incident)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert any(loc_part in [str(p) for p in e["loc"]] or not loc_part for e in r.json()["errors"])
    assert count(session, models.Incident) == 0


def test_missing_or_wrong_credentials_are_401_with_www_authenticate(
    client: TestClient, incident: dict[str, Any]
) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer tri_00000000_nope"},
        {"Authorization": "Basic x"},
    ):
        r = client.post("/v1/incidents", json=incident, headers=headers)
        assert r.status_code == 401
        assert r.headers["content-type"] == PROBLEM
        assert r.headers["www-authenticate"].startswith("Bearer")


def test_wrong_role_is_403(
    client: TestClient, make_key: KeyMaker, incident: dict[str, Any]
) -> None:
    r = post(client, make_key("auditor"), incident)
    assert r.status_code == 403
    assert r.headers["content-type"] == PROBLEM


def test_submitter_cannot_submit_for_another_source_system(
    client: TestClient, make_key: KeyMaker, incident: dict[str, Any], session: Session
) -> None:
    r = post(client, make_key("submitter", source_system="force-b-records"), incident)
    assert r.status_code == 403
    assert count(session, models.Incident) == 0


def test_idempotency_key_replays_and_rejects_a_different_body(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], session: Session
) -> None:
    key = {"Idempotency-Key": f'"{uuid.uuid4()}"'}
    first = post(client, submitter, incident, **key)
    assert first.status_code == 201
    again = post(client, submitter, incident, **key)
    assert again.status_code == 200
    assert again.json() == first.json()
    incident["source"]["reference"] = "PPN-2026-009999"
    clash = post(client, submitter, incident, **key)
    assert clash.status_code == 422
    assert clash.headers["content-type"] == PROBLEM
    assert count(session, models.Incident) == 1


def test_idempotency_key_is_scoped_to_the_principal(
    client: TestClient, make_key: KeyMaker, incident: dict[str, Any], session: Session
) -> None:
    key = {"Idempotency-Key": "shared-key-123"}
    assert post(client, make_key("submitter"), incident, **key).status_code == 201
    other = make_key("submitter", source_system="force-b-records")
    incident["source"]["system"] = "force-b-records"
    assert post(client, other, incident, **key).status_code == 201
    assert count(session, models.Incident) == 2


def test_get_incident_needs_purpose_and_hides_other_systems_records(
    client: TestClient, make_key: KeyMaker, submitter: dict[str, str], incident: dict[str, Any]
) -> None:
    created = post(client, submitter, incident).json()
    url = f"/v1/incidents/{created['incident_id']}"
    r = client.get(url, headers=submitter)
    assert r.status_code == 200
    assert r.json()["incident"]["source"]["reference"] == incident["source"]["reference"]
    no_purpose = {k: v for k, v in submitter.items() if k != "X-Purpose"}
    assert client.get(url, headers=no_purpose).status_code == 400
    other = make_key("submitter", source_system="force-b-records")
    assert client.get(url, headers=other).status_code == 404
    assert client.get(f"/v1/incidents/{uuid.uuid4()}", headers=submitter).status_code == 404


def test_body_over_the_limit_is_413(client: TestClient, submitter: dict[str, str]) -> None:
    r = client.post(
        "/v1/incidents",
        content=b"{" + b" " * 1_100_000 + b"}",
        headers={**submitter, "Content-Type": "application/json"},
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == PROBLEM


def test_unknown_route_and_wrong_method_are_problems(client: TestClient) -> None:
    r = client.get("/v1/nothing-here")
    assert (r.status_code, r.headers["content-type"]) == (404, PROBLEM)
    r = client.delete("/livez")
    assert (r.status_code, r.headers["content-type"]) == (405, PROBLEM)


FAULT_AFTER = (
    "incidents",
    "incident_submissions",
    "persons",
    "incident_persons",
    "assessments",
    "flags",
    "flag_events",
    "incident_queue",
    "audit_events",
)


@pytest.mark.parametrize("table", FAULT_AFTER)
def test_a_fault_after_any_insert_leaves_nothing_behind(
    fresh_database: Database, make_key_fresh: Any, table: str
) -> None:
    settings = Settings(environment="test", database_url=fresh_database.url)
    app = build_app(settings, fresh_database, None)
    headers = make_key_fresh(fresh_database)

    def explode(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith(f"INSERT INTO {table} "):
            raise RuntimeError("injected fault")

    event.listen(fresh_database.engine, "after_cursor_execute", explode)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            r = c.post("/v1/incidents", json=example_incident(), headers=headers)
    finally:
        event.remove(fresh_database.engine, "after_cursor_execute", explode)
    assert r.status_code == 500
    assert r.headers["content-type"] == PROBLEM
    assert "injected" not in r.text
    with fresh_database.session() as s:
        assert count(s, models.Incident) == 0
        assert count(s, models.IncidentSubmission) == 0
        assert count(s, models.IncidentPerson) == 0
        assert count(s, models.Person) == 0
        assert s.scalar(text("SELECT count(*) FROM audit_events")) == 0
    # And the same request succeeds once the fault is gone: nothing was half-written.
    with TestClient(app) as c:
        assert c.post("/v1/incidents", json=example_incident(), headers=headers).status_code == 201
