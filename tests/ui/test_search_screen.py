"""The search screen: by source reference, PNC id, or name and date of birth; within scope;
audited with the purpose chosen for the search, never with what was searched for.

All data is invented (tests/data/incident.example.json: victim Amira Hale, born
1994-03-02, PNC 94/118822K).
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditPendingEvent
from tests.ui.conftest import SignIn

REFERENCE = "PPN-2026-004211"


def submit(client: TestClient, submitter: dict[str, str], incident: dict[str, Any]) -> str:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    return str(created.json()["incident_id"])


def events(session: Session, route: str) -> list[AuditPendingEvent]:
    return list(
        session.scalars(
            select(AuditPendingEvent)
            .where(AuditPendingEvent.route == route)
            .order_by(AuditPendingEvent.id)
        )
    )


def service_logs(caplog: pytest.LogCaptureFixture) -> str:
    """What the service logged (not the test client's own request lines)."""
    return "\n".join(
        f"{r.getMessage()} {r.__dict__}" for r in caplog.records if not r.name.startswith("httpx")
    )


def victim_id(client: TestClient, incident_id: str, headers: dict[str, str]) -> str:
    record = client.get(f"/v1/incidents/{incident_id}", headers=headers).json()
    return str(next(p["person_id"] for p in record["persons"] if p["role"] == "victim"))


def test_the_empty_form_searches_nothing_and_defaults_to_the_sessions_purpose(
    client: TestClient, sign_in: SignIn, session: Session
) -> None:
    sign_in("triage", purpose="marac:MARAC-2026-0147")
    page = client.get("/ui/search")
    assert page.status_code == 200
    assert page.text.count("<h1>") == 1
    assert '<option value="marac" selected>' in page.text
    assert 'value="MARAC-2026-0147"' in page.text
    assert 'id="results"' not in page.text
    assert events(session, "GET /v1/incidents") == []


def test_search_by_source_reference_links_to_the_incident_with_the_chosen_purpose(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
    caplog: pytest.LogCaptureFixture,
) -> None:
    incident_id = submit(client, submitter, incident)
    sign_in("auditor", purpose="audit")
    caplog.set_level(logging.DEBUG)
    page = client.get(
        "/ui/search",
        params={
            "source_reference": REFERENCE,
            "purpose": "investigation",
            "case_reference": "CRIM-2026-0001",
        },
    )
    assert page.status_code == 200, page.text
    assert f'href="/ui/incidents/{incident_id}"' in page.text
    assert f'href="/ui/incidents/{incident_id}/assessments"' in page.text
    assert 'id="incident-results"' in page.text
    assert 'id="person-results"' not in page.text  # a reference finds incidents only
    assert f'value="{REFERENCE}"' in page.text  # the form shows what was entered
    found = events(session, "GET /v1/incidents")
    assert [e.purpose for e in found] == ["investigation:CRIM-2026-0001"]
    assert incident_id in found[0].record_ids
    assert REFERENCE not in str(found[0].detail)
    # The session's purpose is unchanged: the chosen one was for this search only.
    assert '<option value="audit" selected>' in client.get("/ui/search").text
    assert REFERENCE not in service_logs(caplog)


def test_search_by_pnc_finds_the_person_and_their_incidents(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    make_key: Any,
    sign_in: SignIn,
    session: Session,
) -> None:
    incident_id = submit(client, submitter, incident)
    person_id = victim_id(client, incident_id, make_key("auditor"))
    sign_in("triage")
    page = client.get("/ui/search", params={"pnc": "94/118822K"})
    assert page.status_code == 200, page.text
    assert f'href="/ui/persons/{person_id}"' in page.text
    assert f'href="/ui/incidents/{incident_id}"' in page.text
    assert "Victim" in page.text.split('id="incident-results"')[1]
    assert [e.purpose for e in events(session, "GET /v1/persons")] == ["triage"]
    assert [e.purpose for e in events(session, "GET /v1/incidents")] == ["triage"]


def test_search_by_name_and_date_of_birth(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    caplog: pytest.LogCaptureFixture,
) -> None:
    incident_id = submit(client, submitter, incident)
    sign_in("auditor", purpose="audit")
    caplog.set_level(logging.DEBUG)
    page = client.get("/ui/search", params={"name": "amira  HALE", "date_of_birth": "1994-03-02"})
    assert page.status_code == 200, page.text
    assert f'href="/ui/incidents/{incident_id}"' in page.text
    assert 'id="person-results"' in page.text
    logged = service_logs(caplog)
    assert "app.access" in logged
    assert "Hale" not in logged
    assert "1994-03-02" not in logged
    wrong_birthday = client.get(
        "/ui/search", params={"name": "Amira Hale", "date_of_birth": "1994-03-03"}
    )
    assert 'id="no-incidents"' in wrong_birthday.text
    assert 'id="no-persons"' in wrong_birthday.text


def test_search_stays_within_the_principals_areas(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = submit(client, submitter, incident)
    sign_in("triage", areas=["E09000099"])
    for params in (
        {"source_reference": REFERENCE},
        {"pnc": "94/118822K"},
        {"name": "Amira Hale", "date_of_birth": "1994-03-02"},
    ):
        page = client.get("/ui/search", params=params)
        assert page.status_code == 200
        assert 'id="no-incidents"' in page.text
        assert incident_id not in page.text
        assert "/ui/persons/" not in page.text


def test_one_way_at_a_time_and_a_name_needs_its_date_of_birth(
    client: TestClient, sign_in: SignIn, session: Session
) -> None:
    sign_in("triage")
    both = client.get("/ui/search", params={"source_reference": REFERENCE, "pnc": "94/118822K"})
    assert both.status_code == 400
    assert 'class="error-summary"' in both.text
    assert 'href="#source_reference"' in both.text
    no_birthday = client.get("/ui/search", params={"name": "Amira Hale"})
    assert no_birthday.status_code == 400
    assert 'href="#date_of_birth"' in no_birthday.text
    summary = no_birthday.text.split('id="error-summary"')[1].split("</div>")[0]
    assert "Amira" not in summary
    bad_purpose = client.get(
        "/ui/search", params={"pnc": "94/118822K", "purpose": "curiosity", "case_reference": ""}
    )
    assert bad_purpose.status_code == 400
    assert 'href="#purpose"' in bad_purpose.text
    assert events(session, "GET /v1/incidents") == []


def test_the_apis_refusal_is_shown_without_echoing_the_input(
    client: TestClient, sign_in: SignIn
) -> None:
    sign_in("triage")
    page = client.get("/ui/search", params={"name": "Madonna", "date_of_birth": "1958-08-16"})
    assert page.status_code == 400
    summary = page.text.split('id="error-summary"')[1].split("</div>")[0]
    assert 'href="#name"' in summary
    assert "Madonna" not in summary
    odd = client.get("/ui/search", params={"source_reference": "not <a> reference"})
    assert odd.status_code == 400
    summary = odd.text.split('id="error-summary"')[1].split("</div>")[0]
    assert "&lt;a&gt;" not in summary
    assert "letters, digits" in summary


def test_an_agency_may_not_search(client: TestClient, sign_in: SignIn) -> None:
    sign_in("agency", agency="csc")
    assert client.get("/ui/search", params={"pnc": "94/118822K"}).status_code == 403


def test_search_needs_a_signed_in_user(client: TestClient) -> None:
    reply = client.get("/ui/search", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/ui/sign-in")
