"""Erasure (DPA 2018 s.39, s.62(1)(f)): the personal data goes, a tombstone and the audit
trail stay, and the hash chain still verifies.

The incident erased here carries distinctive invented names, dates and identifiers so that
a scan of every table can prove they are gone. None of it describes a real person.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import verify
from app.audit.models import AuditEvent
from app.db import Base
from app.flags.models import Flag, FlagEvent
from app.incidents import models
from tests.auth.scenario import AREA_A, PROBLEM, give_flag, incident_body, post_incident
from tests.conftest import KeyMaker

# Invented, and chosen to be unlike anything else in the database.
GIVEN, FAMILY = "Ottoline", "Quarrendon-Vesk"
CHILD_GIVEN = "Perpetua"
DOB = "1987-12-30"
PNC = "87/445566Q"
ACCOUNT = "Zanzibar-lantern said the door was locked"
COMMENT = "Vesk-marker waits at the bus stop"
RATIONALE = "Quarrendon judgement marker"
STATUS_NOTE = "Spoke to Ottoline Quarrendon-Vesk at school"
PERSONAL = (GIVEN, FAMILY, CHILD_GIVEN, DOB, PNC, ACCOUNT, COMMENT, RATIONALE, STATUS_NOTE)
REASON = {"reason": "test: retention review decided to dispose"}


def distinctive_incident() -> dict[str, Any]:
    body = incident_body(area=AREA_A)
    victim, _perpetrator, child, _unborn = body["persons"]
    victim["name"] = {"given": GIVEN, "family": FAMILY}
    victim["date_of_birth"] = DOB
    victim["identifiers"] = [{"scheme": "pnc", "value": PNC}]
    child["name"] = {"given": CHILD_GIVEN, "family": FAMILY}
    child["child"]["account"] = ACCOUNT
    body["victim_checklist"]["comments"] = {"stalking_harassment": COMMENT}
    return body


def scan_database(session: Session) -> dict[str, list[str]]:
    """Every table, every row, as text: which of the distinctive strings appear where."""
    found: dict[str, list[str]] = {}
    for table in Base.metadata.sorted_tables:
        for row in session.execute(select(table)):
            text = repr(tuple(row))
            hits = [s for s in PERSONAL if s in text]
            if hits:
                found.setdefault(table.name, []).extend(hits)
    return found


@pytest.fixture
def erasable(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker, session: Session
) -> dict[str, Any]:
    """An incident with a revision, a judgement and a worked flag, all full of personal data."""
    body = distinctive_incident()
    created = client.post(
        "/v1/incidents", json=body, headers={**submitter, "Idempotency-Key": "erase-test-1"}
    )
    assert created.status_code == 201, created.text
    iid = created.json()["incident_id"]
    revised = copy.deepcopy(body)
    revised["victim_checklist"]["answers"]["isolated"] = "yes"
    r = client.post(f"/v1/incidents/{iid}/revisions", json=revised, headers=submitter)
    assert r.status_code == 201, r.text
    triage = make_key("triage", areas=[AREA_A])
    r = client.post(
        f"/v1/incidents/{iid}/judgements",
        json={"level": "high", "rationale": RATIONALE},
        headers=triage,
    )
    assert r.status_code == 201, r.text
    # A flag an agency has finished with, its status reason written in free text.
    flag = give_flag(session, iid, agency="school", subject_ref="c1")
    flag.status, flag.status_reason = "done", STATUS_NOTE
    session.add(
        FlagEvent(
            flag_id=flag.id, principal_id="key:x", role="agency", change="status", note=STATUS_NOTE
        )
    )
    session.commit()
    assert set(scan_database(session)), "the scenario should store the personal data first"
    return {"id": iid, "body": body, "triage": triage}


def test_erasure_removes_every_trace_of_the_personal_data_from_the_database(
    client: TestClient, make_key: KeyMaker, erasable: dict[str, Any], session: Session
) -> None:
    r = client.post(f"/v1/incidents/{erasable['id']}/erase", json=REASON, headers=make_key("admin"))
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["incident_id"] == erasable["id"]
    assert out["persons_erased"] == 4  # none of them is in another live incident
    session.expire_all()
    assert scan_database(session) == {}
    # The tombstone: id, source reference, area, dates, who erased it and why.
    row = session.get(models.Incident, uuid.UUID(erasable["id"]))
    assert row is not None
    assert row.erased_at is not None
    assert row.erasure_reason == REASON["reason"]
    assert row.erased_by is not None
    assert row.erased_by.startswith("key:")
    assert row.source_reference == erasable["body"]["source"]["reference"]
    for submission in session.scalars(
        select(models.IncidentSubmission).where(models.IncidentSubmission.incident_id == row.id)
    ):
        assert (submission.body, submission.body_raw, submission.response_body) == (None,) * 3
        assert len(submission.body_sha256) == 64  # the digest stays
    for person in row.persons:
        assert (person.given_name, person.family_name, person.date_of_birth) == (None,) * 3
    # Open flags are closed; none is left with free text.
    for flag in session.scalars(select(Flag).where(Flag.incident_id == row.id)):
        assert flag.status in ("done", "not_required")
        assert flag.status_reason == "incident erased"


def test_after_erasure_a_read_returns_a_tombstone_without_the_incident(
    client: TestClient, make_key: KeyMaker, erasable: dict[str, Any]
) -> None:
    assert (
        client.post(
            f"/v1/incidents/{erasable['id']}/erase", json=REASON, headers=make_key("admin")
        ).status_code
        == 200
    )
    r = client.get(f"/v1/incidents/{erasable['id']}", headers=erasable["triage"])
    assert r.status_code == 200
    tombstone = r.json()
    assert tombstone["erased"] is True
    assert tombstone["incident"] is None
    assert not [s for s in PERSONAL if s in r.text]
    # Derived data is gone too: the assessments answer 410 Gone.
    r = client.get(f"/v1/incidents/{erasable['id']}/assessments", headers=erasable["triage"])
    assert r.status_code == 410


def test_erasure_is_logged_and_the_chain_still_verifies(
    client: TestClient, make_key: KeyMaker, erasable: dict[str, Any], session: Session
) -> None:
    r = client.post(f"/v1/incidents/{erasable['id']}/erase", json=REASON, headers=make_key("admin"))
    assert r.status_code == 200
    event = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert event is not None
    assert (event.operation, event.record_type, event.role) == ("erase", "incident", "admin")
    assert event.record_ids == [erasable["id"]]
    assert len(event.person_ids) == 4
    assert event.request_id == r.headers["x-request-id"]
    # The earlier events about this incident are all still there, and the chain is whole.
    about = [
        e.operation
        for e in session.scalars(select(AuditEvent).order_by(AuditEvent.seq))
        if erasable["id"] in e.record_ids
    ]
    assert about[0] == "collect"
    assert about[-1] == "erase"
    assert "alter" in about
    result = verify(session)
    assert result.ok, result


def test_a_resubmission_of_an_erased_incident_is_409_and_restores_nothing(
    client: TestClient,
    make_key: KeyMaker,
    submitter: dict[str, str],
    erasable: dict[str, Any],
    session: Session,
) -> None:
    client.post(f"/v1/incidents/{erasable['id']}/erase", json=REASON, headers=make_key("admin"))
    r = client.post("/v1/incidents", json=erasable["body"], headers=submitter)
    assert r.status_code == 409
    # The idempotency key's stored response was cleared as well: no replay either.
    r = client.post(
        "/v1/incidents",
        json=erasable["body"],
        headers={**submitter, "Idempotency-Key": "erase-test-1"},
    )
    assert r.status_code == 409
    session.expire_all()
    assert scan_database(session) == {}


def test_erasing_twice_is_409(
    client: TestClient, make_key: KeyMaker, erasable: dict[str, Any]
) -> None:
    admin = make_key("admin")
    url = f"/v1/incidents/{erasable['id']}/erase"
    assert client.post(url, json=REASON, headers=admin).status_code == 200
    r = client.post(url, json=REASON, headers=admin)
    assert r.status_code == 409
    assert r.headers["content-type"] == PROBLEM


def test_erasure_needs_a_reason(
    client: TestClient, make_key: KeyMaker, submitter: dict[str, str], session: Session
) -> None:
    iid = post_incident(client, submitter, incident_body())
    admin = make_key("admin")
    for body in (None, {}, {"reason": ""}, {"reason": "no"}, {"reason": "x" * 501}, {"reason": 42}):
        r = client.post(f"/v1/incidents/{iid}/erase", json=body, headers=admin)
        assert r.status_code == 422, body
        assert r.headers["content-type"] == PROBLEM
    row = session.get(models.Incident, uuid.UUID(iid))
    assert row is not None
    assert row.erased_at is None


def test_only_an_admin_may_erase(
    client: TestClient, make_key: KeyMaker, erasable: dict[str, Any], session: Session
) -> None:
    for role, kwargs in (
        ("submitter", {}),
        ("triage", {}),
        ("agency", {"agency": "school", "schools": ["100123"]}),  # the child's school
        ("auditor", {}),
    ):
        r = client.post(
            f"/v1/incidents/{erasable['id']}/erase", json=REASON, headers=make_key(role, **kwargs)
        )
        assert r.status_code == 403, role
    session.expire_all()
    assert scan_database(session)  # nothing was erased


def test_erasing_an_incident_that_does_not_exist_is_404(
    client: TestClient, make_key: KeyMaker
) -> None:
    r = client.post(f"/v1/incidents/{uuid.uuid4()}/erase", json=REASON, headers=make_key("admin"))
    assert r.status_code == 404


def test_a_person_in_another_live_incident_keeps_their_identifiers(
    client: TestClient, make_key: KeyMaker, submitter: dict[str, str], session: Session
) -> None:
    # The same victim and perpetrator (same PNC ids) in two incidents: erasing one keeps
    # them, and their identifiers, for the other.
    first = client.post("/v1/incidents", json=distinctive_incident(), headers=submitter)
    second = client.post("/v1/incidents", json=distinctive_incident(), headers=submitter)
    assert (first.status_code, second.status_code) == (201, 201)
    r = client.post(
        f"/v1/incidents/{first.json()['incident_id']}/erase", json=REASON, headers=make_key("admin")
    )
    assert r.status_code == 200
    assert r.json()["persons_erased"] == 2  # the children: no identifiers, so not linked
    session.expire_all()
    remaining = scan_database(session)
    assert PNC in remaining.get("person_identifiers", [])
    assert GIVEN in str(remaining.get("incident_persons", []))  # in the live incident only
