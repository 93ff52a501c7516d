"""The person chronology screen: the API's person and timeline, in scope, audited."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditPendingEvent
from tests.conftest import KeyMaker
from tests.ui.conftest import SignIn


def _person_ids(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], reader: dict[str, str]
) -> tuple[str, dict[str, str]]:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    incident_id = created.json()["incident_id"]
    record = client.get(f"/v1/incidents/{incident_id}", headers=reader).json()
    return incident_id, {p["ref"]: p["person_id"] for p in record["persons"]}


def test_the_chronology_lists_the_persons_incidents_with_levels(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
    session: Session,
) -> None:
    incident_id, ids = _person_ids(client, submitter, incident, make_key("triage"))
    sign_in("triage", purpose="marac:MARAC-2026-0147")
    page = client.get(f"/ui/persons/{ids['p1']}")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count("<h1") == 1
    assert "Chronology: Daniel Crewe" in html
    assert f'href="/ui/incidents/{incident_id}"' in html
    assert '<span class="level rank-3">High</span>' in html
    assert "Visible high risk" in html  # MARAC criteria
    assert "Serial perpetrator" in html
    assert 'href="/ui/flags/' in html
    assert f'href="/ui/persons/{ids["v1"]}"' in html  # the distinct victim
    events = session.scalars(
        select(AuditPendingEvent).where(AuditPendingEvent.route.like("GET /v1/persons/%"))
    ).all()
    assert len(events) == 2
    assert {e.purpose for e in events} == {"marac:MARAC-2026-0147"}
    assert {e.operation for e in events} == {"consult"}


def test_a_person_outside_scope_is_a_404_and_agencies_have_no_chronology(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
) -> None:
    _, ids = _person_ids(client, submitter, incident, make_key("triage"))
    sign_in("triage", areas=["E09000099"])
    page = client.get(f"/ui/persons/{ids['v1']}")
    assert page.status_code == 404
    assert "Amira" not in page.text
    assert client.get("/ui/persons/nobody").status_code == 404
    sign_in("agency", agency="csc")
    assert client.get(f"/ui/persons/{ids['v1']}").status_code == 403
