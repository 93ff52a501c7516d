"""The triage queue screen: the API's queue, in scope, audited with the chosen purpose."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditPendingEvent
from tests.conftest import KeyMaker
from tests.ui.conftest import SignIn


def test_queue_lists_incidents_and_records_the_purpose(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    incident_id = created.json()["incident_id"]
    sign_in("triage", purpose="marac:MARAC-2026-0147")
    page = client.get("/ui/queue")
    assert page.status_code == 200
    assert f'href="/ui/incidents/{incident_id}"' in page.text
    assert "High" in page.text  # the example's victim level, in words
    events = session.scalars(
        select(AuditPendingEvent).where(AuditPendingEvent.route == "GET /v1/queue")
    ).all()
    assert [e.purpose for e in events] == ["marac:MARAC-2026-0147"]
    assert events[0].role == "triage"
    assert incident_id in events[0].record_ids
    # The refresh asks for the table only, with the same filters.
    partial = client.get("/ui/queue?partial=true&area=E09000018")
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert f"/ui/incidents/{incident_id}" in partial.text


def test_queue_stays_within_the_principals_areas(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    make_key: KeyMaker,
    sign_in: SignIn,
) -> None:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    incident_id = created.json()["incident_id"]
    sign_in("triage", areas=["E09000099"])
    page = client.get("/ui/queue")
    assert page.status_code == 200
    assert incident_id not in page.text
    asked = client.get("/ui/queue?area=E09000018")
    assert incident_id not in asked.text


def test_an_agency_has_no_queue(client: TestClient, sign_in: SignIn) -> None:
    sign_in("agency", agency="csc")
    assert client.get("/ui/queue").status_code == 403
