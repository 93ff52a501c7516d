"""Information-sharing decisions: a disclosure with its lawful basis, a decision not to
share with its reason, validation, who may record and read them, and the audit log.

All data is invented (tests/data/README.md).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.sharing.models import LAWFUL_BASES
from tests.conftest import KeyMaker
from tests.flags.api_helpers import (
    AREA_B,
    flags_of,
    incident_at,
    one_flag,
    post_incident,
)

PROBLEM = "application/problem+json"


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


@pytest.fixture
def incident_id(client: TestClient, submitter: dict[str, str]) -> str:
    return post_incident(client, submitter, incident_at("2030-04-01T10:00:00Z"))


def shared(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision": "shared",
        "recipient_agency": "school",
        "recipient_detail": "designated safeguarding lead",
        "lawful_basis": "safeguarding",
        "purpose": "Operation Encompass notification before the next school day",
        "categories_shared": ["incident_summary", "child_details"],
        "subject_refs": ["c1"],
        "consent_status": "not_sought_risk",
    }
    return body | overrides


def not_shared(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "decision": "not_shared",
        "recipient_agency": "housing",
        "purpose": "Request for the victim's new address from a housing provider",
        "consent_status": "refused",
        "reason_not_shared": "Invented: sharing the new address could reach the perpetrator.",
    }
    return body | overrides


def post(
    client: TestClient, headers: dict[str, str], incident_id: str, body: dict[str, Any]
) -> Any:
    return client.post(f"/v1/incidents/{incident_id}/disclosures", json=body, headers=headers)


def test_a_disclosure_is_recorded_listed_and_logged_as_a_disclosure_to_the_agency(
    client: TestClient, session: Session, triage: dict[str, str], incident_id: str
) -> None:
    flag = one_flag(flags_of(client, triage, incident_id), "operation_encompass", "c1")
    r = post(client, triage, incident_id, shared(flag_id=flag["id"]))
    assert r.status_code == 201, r.text
    out = r.json()
    assert out["decision"] == "shared"
    assert out["lawful_basis"] == "safeguarding"
    assert out["categories_shared"] == ["incident_summary", "child_details"]
    assert out["subject_refs"] == ["c1"]
    assert out["flag_id"] == flag["id"]
    assert out["decided_by_role"] == "triage"
    assert out["decided_by"]
    assert out["reason_not_shared"] is None

    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert event.operation == "disclose"
    assert event.recipients == ["agency:school"]
    assert out["id"] in event.record_ids
    assert incident_id in event.record_ids
    assert len(event.person_ids) == 1  # only c1's information was shared

    listed = client.get(f"/v1/incidents/{incident_id}/disclosures", headers=triage)
    assert listed.status_code == 200
    assert listed.json() == {"incident_id": incident_id, "disclosures": [out]}


def test_a_disclosure_to_adult_social_care_is_recorded_and_logged_to_that_agency(
    client: TestClient, session: Session, triage: dict[str, str], incident_id: str
) -> None:
    # A Care Act 2014 s.42 referral about the victim, the adult at risk.
    body = shared(
        recipient_agency="adult_social_care",
        recipient_detail="adult safeguarding team",
        purpose="Invented: referral for a section 42 enquiry",
        categories_shared=["incident_summary", "victim_details", "risk_assessment"],
        subject_refs=["v1"],
    )
    r = post(client, triage, incident_id, body)
    assert r.status_code == 201, r.text
    assert r.json()["recipient_agency"] == "adult_social_care"
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (event.operation, event.recipients) == ("disclose", ["agency:adult_social_care"])
    assert len(event.person_ids) == 1  # only the victim's information was shared


def test_a_decision_not_to_share_needs_its_reason_and_is_listed_too(
    client: TestClient, session: Session, triage: dict[str, str], incident_id: str
) -> None:
    missing = post(client, triage, incident_id, not_shared(reason_not_shared=None))
    assert missing.status_code == 422
    assert missing.headers["content-type"] == PROBLEM
    r = post(client, triage, incident_id, not_shared())
    assert r.status_code == 201, r.text
    assert r.json()["lawful_basis"] is None
    assert r.json()["categories_shared"] == []
    assert r.json()["subject_refs"] == ["c1", "c2", "p1", "v1"]  # default: everyone
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(1)).one()
    assert (event.operation, event.recipients) == ("alter", [])
    assert event.detail["decision"] == "not_shared"
    shared_too = post(client, triage, incident_id, shared())
    listed = client.get(f"/v1/incidents/{incident_id}/disclosures", headers=triage).json()
    assert {d["id"] for d in listed["disclosures"]} == {r.json()["id"], shared_too.json()["id"]}


@pytest.mark.parametrize(
    "body",
    [
        shared(lawful_basis="legitimate_interests"),  # not one of the five
        shared(lawful_basis=None),  # sharing needs a basis
        shared(categories_shared=[]),  # sharing shares something
        shared(categories_shared=["bank_details"]),
        shared(categories_shared=["flags", "flags"]),
        shared(reason_not_shared="a reason belongs to a decision not to share"),
        shared(lawful_basis="consent", consent_status="refused"),
        shared(consent_status="maybe"),
        shared(recipient_agency="other", recipient_detail=None),
        shared(recipient_agency="newspaper"),
        shared(purpose=""),
        shared(decided_at="2030-04-01T10:00:00"),  # no offset
        shared(shared_with_everyone=True),  # unknown field
        not_shared(categories_shared=["incident_summary"]),
        {"decision": "shared"},
    ],
)
def test_invalid_decisions_are_422(
    client: TestClient, triage: dict[str, str], incident_id: str, body: dict[str, Any]
) -> None:
    r = post(client, triage, incident_id, body)
    assert r.status_code == 422, r.text
    assert r.headers["content-type"] == PROBLEM
    assert "Invented" not in r.text


def test_a_refusal_of_consent_is_recorded_as_a_decision_not_to_share(
    client: TestClient, triage: dict[str, str], incident_id: str
) -> None:
    """Consent was the basis considered, the victim refused, nothing was shared: recording
    exactly that is what a decision not to share is for (sharing on consent needs it)."""
    r = post(client, triage, incident_id, not_shared(lawful_basis="consent"))
    assert r.status_code == 201, r.text
    assert (r.json()["lawful_basis"], r.json()["consent_status"]) == ("consent", "refused")


def test_every_lawful_basis_is_accepted(
    client: TestClient, triage: dict[str, str], incident_id: str
) -> None:
    for basis in LAWFUL_BASES:
        consent = "given" if basis == "consent" else "not_sought_unsafe"
        r = post(client, triage, incident_id, shared(lawful_basis=basis, consent_status=consent))
        assert r.status_code == 201, (basis, r.text)
    assert set(LAWFUL_BASES) == {
        "consent",
        "safeguarding",
        "statutory_function",
        "vital_interests",
        "administration_of_justice",
    }


def test_decisions_must_fit_the_incident(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str], incident_id: str
) -> None:
    unknown_ref = post(client, triage, incident_id, shared(subject_refs=["c9"]))
    assert unknown_ref.status_code == 422
    assert unknown_ref.json()["errors"][0]["loc"] == ["body", "subject_refs", 0]
    other = post_incident(client, submitter, incident_at("2030-04-02T10:00:00Z"))
    foreign = one_flag(flags_of(client, triage, other), "idva_referral")
    r = post(client, triage, incident_id, shared(flag_id=foreign["id"]))
    assert r.status_code == 422
    future = post(client, triage, incident_id, shared(decided_at="2999-01-01T00:00:00Z"))
    assert future.status_code == 422
    earlier = post(client, triage, incident_id, shared(decided_at="2026-11-01T12:00:00+01:00"))
    assert earlier.status_code == 201
    assert earlier.json()["decided_at"].startswith("2026-11-01T11:00:00")


def test_only_triage_in_the_area_records_and_triage_or_auditors_read(
    client: TestClient, make_key: KeyMaker, triage: dict[str, str], incident_id: str
) -> None:
    assert post(client, triage, incident_id, shared()).status_code == 201
    triage_b = make_key("triage", areas=[AREA_B])
    assert post(client, triage_b, incident_id, shared()).status_code == 404
    url = f"/v1/incidents/{incident_id}/disclosures"
    assert client.get(url, headers=triage_b).status_code == 404
    auditor = make_key("auditor")
    assert post(client, auditor, incident_id, shared()).status_code == 403
    assert len(client.get(url, headers=auditor).json()["disclosures"]) == 1
    school = make_key("agency", agency="school", schools=["100123"])  # c1's school
    assert post(client, school, incident_id, shared()).status_code == 403
    assert client.get(url, headers=school).status_code == 403
    assert client.get(url, headers={"Authorization": triage["Authorization"]}).status_code == 400
    missing = "00000000-0000-4000-8000-000000000000"
    assert post(client, triage, missing, shared()).status_code == 404


def test_an_idempotency_key_replays_the_original_decision(
    client: TestClient, triage: dict[str, str], incident_id: str
) -> None:
    headers = {**triage, "Idempotency-Key": "disclosure-retry-1"}
    first = post(client, headers, incident_id, shared())
    again = post(client, headers, incident_id, shared())
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    assert again.headers["Idempotent-Replayed"] == "true"
    listed = client.get(f"/v1/incidents/{incident_id}/disclosures", headers=triage).json()
    assert len(listed["disclosures"]) == 1
    reused = post(client, headers, incident_id, not_shared())
    assert reused.status_code == 422
