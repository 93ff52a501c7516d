"""Idempotency-Key on every write, handled once: the same key and request replay the stored
result; a key binds to the first request it was used with, even one answered as a replay."""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.assessments.models import Assessment
from app.flags.models import FlagEvent
from app.incidents import models
from tests.conftest import KeyMaker
from tests.flags.api_helpers import flags_of, one_flag


def keyed(headers: dict[str, str], key: str) -> dict[str, str]:
    return {**headers, "Idempotency-Key": key}


def test_a_key_binds_to_its_first_body_even_when_that_request_was_a_replay(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], session: Session
) -> None:
    assert client.post("/v1/incidents", json=incident, headers=submitter).status_code == 201
    # The same incident again, now with a key: a replay by its source reference (200).
    again = client.post("/v1/incidents", json=incident, headers=keyed(submitter, "k-1"))
    assert again.status_code == 200
    # Another incident with that key: the key already belongs to the first body.
    other = copy.deepcopy(incident)
    other["source"]["reference"] = "PPN-2026-OTHER"
    r = client.post("/v1/incidents", json=other, headers=keyed(submitter, "k-1"))
    assert r.status_code == 422, r.text
    assert r.json()["errors"][0]["loc"] == ["header", "Idempotency-Key"]
    assert session.scalar(select(func.count()).select_from(models.Incident)) == 1


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


@pytest.fixture
def incident_id(client: TestClient, submitter: dict[str, str], incident: dict[str, Any]) -> str:
    r = client.post("/v1/incidents", json=incident, headers=submitter)
    assert r.status_code == 201, r.text
    return str(r.json()["incident_id"])


def test_a_note_and_a_flag_change_replay_their_stored_result(
    client: TestClient, triage: dict[str, str], incident_id: str, session: Session
) -> None:
    flag = one_flag(flags_of(client, triage, incident_id), "idva_referral")
    note = {"text": "rang the victim's IDVA (invented)"}
    first = client.post(f"/v1/flags/{flag['id']}/notes", json=note, headers=keyed(triage, "n-1"))
    second = client.post(f"/v1/flags/{flag['id']}/notes", json=note, headers=keyed(triage, "n-1"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.headers["idempotent-replayed"] == "true"
    assert second.json() == first.json()
    assert second.headers["location"] == first.headers["location"]

    change = {"status": "acknowledged"}
    headers = {**keyed(triage, "p-1"), "If-Match": flag["etag"]}
    changed = client.patch(f"/v1/flags/{flag['id']}", json=change, headers=headers)
    replayed = client.patch(f"/v1/flags/{flag['id']}", json=change, headers=headers)
    assert (changed.status_code, replayed.status_code) == (200, 200)
    assert replayed.headers["idempotent-replayed"] == "true"
    assert replayed.json() == changed.json()
    assert replayed.headers["etag"] == changed.headers["etag"]
    statuses = session.scalar(
        select(func.count()).where(
            FlagEvent.flag_id == uuid.UUID(flag["id"]), FlagEvent.change == "status"
        )
    )
    notes = session.scalar(
        select(func.count()).where(
            FlagEvent.flag_id == uuid.UUID(flag["id"]), FlagEvent.change == "note"
        )
    )
    assert (statuses, notes) == (1, 1)


def test_a_judgement_retried_with_its_key_adds_one_version(
    client: TestClient, triage: dict[str, str], incident_id: str, session: Session
) -> None:
    judgement = {"level": "high", "rationale": "children at risk, invented test rationale"}
    path = f"/v1/incidents/{incident_id}/judgements"
    first = client.post(path, json=judgement, headers=keyed(triage, "j-1"))
    second = client.post(path, json=judgement, headers=keyed(triage, "j-1"))
    assert (first.status_code, second.status_code) == (201, 200)
    assert second.json() == first.json()
    versions = session.scalar(
        select(func.count()).where(Assessment.incident_id == uuid.UUID(incident_id))
    )
    assert versions == 2
    # The same key on another route is another request: refused.
    r = client.post(
        f"/v1/incidents/{incident_id}/disclosures",
        json=judgement,
        headers=keyed(triage, "j-1"),
    )
    assert r.status_code == 422


def test_a_new_api_key_is_never_stored_for_replay(client: TestClient, make_key: KeyMaker) -> None:
    admin = make_key("admin")
    body = {"role": "auditor", "label": "retry test"}
    first = client.post("/v1/admin/keys", json=body, headers=keyed(admin, "key-1"))
    second = client.post("/v1/admin/keys", json=body, headers=keyed(admin, "key-1"))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.json()["secret"] != second.json()["secret"]
