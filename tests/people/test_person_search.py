"""GET /v1/persons?…: finding persons by PNC id, or name and date of birth; a person is
visible only through incidents in the caller's scope; audited without the values.

Every name, date of birth, identifier and reference here is invented test data.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import AuditEvent
from app.audit.chain import seal_all
from tests.conftest import KeyMaker
from tests.people.factories import (
    AMY,
    BETH,
    MEDIUM_ANSWERS,
    OTHER_AREA,
    PAUL,
    days_before,
    make_incident,
    perpetrator,
    submit,
    victim,
)
from tests.people.test_person_routes import pauls_families, person_id

PAUL_PNC = "86/200002B"
AMY_PNC = "95/100001A"


@pytest.fixture
def triage_b(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage", areas=[OTHER_AREA])


def find(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/v1/persons", params=params, headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def test_by_pnc_the_person_with_roles_and_visible_incidents(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
    triage_b: dict[str, str],
    auditor: dict[str, str],
    make_key: KeyMaker,
) -> None:
    ids = pauls_families(client, submitter, make_key)
    paul = person_id(client, auditor, ids["amy"], "p1")

    out = find(client, auditor, pnc="1986/0200002B")

    assert out["truncated"] is False
    (item,) = out["items"]
    assert item == {
        "id": paul,
        "roles": ["perpetrator"],
        "incident_count": 3,
        "last_incident_at": item["last_incident_at"],
        "links": {"self": f"/v1/persons/{paul}", "timeline": f"/v1/persons/{paul}/timeline"},
    }
    for absent in ("Paul", "Strand", PAUL["dob"], PAUL_PNC):
        assert absent not in json.dumps(out)
    # Within scope: area A's triage counts the two incidents it sees, area B's the one.
    assert [
        (i["id"], i["incident_count"]) for i in find(client, triage, pnc=PAUL_PNC)["items"]
    ] == [(paul, 2)]
    assert [
        (i["id"], i["incident_count"]) for i in find(client, triage_b, pnc=PAUL_PNC)["items"]
    ] == [(paul, 1)]
    # Amy is only in area A's incidents: invisible to area B.
    assert find(client, triage_b, pnc=AMY_PNC)["items"] == []
    assert find(client, triage, pnc="99/999999Z")["items"] == []


def test_by_name_and_date_of_birth_a_merged_person_is_found_once_as_the_survivor(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
    triage_b: dict[str, str],
) -> None:
    with_pnc = submit(
        client,
        submitter,
        make_incident(
            "PS-1",
            days_before(50),
            [victim(**AMY, pnc=AMY_PNC), perpetrator(**PAUL)],
            answers=MEDIUM_ANSWERS,
        ),
    )
    # No identifier this time: linked on name and date of birth (an automatic merge).
    submit(
        client,
        submitter,
        make_incident(
            "PS-2",
            days_before(10),
            [victim(**AMY), perpetrator("Tom", "Ashdown", "1989-05-06")],
            answers=MEDIUM_ANSWERS,
        ),
    )
    amy = person_id(client, triage, with_pnc["incident_id"], "v1")

    out = find(client, triage, name=" amy  OKAFOR", date_of_birth=AMY["dob"])

    assert [(i["id"], i["roles"], i["incident_count"]) for i in out["items"]] == [
        (amy, ["victim"], 2)
    ]
    assert find(client, triage, name="Amy Okafor", date_of_birth="1995-04-13")["items"] == []
    assert find(client, triage_b, name="Amy Okafor", date_of_birth=AMY["dob"])["items"] == []
    # Someone else with the same name and date of birth (another PNC id): two persons,
    # latest incident first.
    other = submit(
        client,
        submitter,
        make_incident(
            "PS-3",
            days_before(5),
            [victim(**AMY, pnc="95/100009Z"), perpetrator(**BETH)],
            answers=MEDIUM_ANSWERS,
        ),
    )
    namesake = person_id(client, triage, other["incident_id"], "v1")
    out = find(client, triage, name="Amy Okafor", date_of_birth=AMY["dob"])
    assert [(i["id"], i["incident_count"]) for i in out["items"]] == [(namesake, 1), (amy, 2)]
    limited = find(client, triage, name="Amy Okafor", date_of_birth=AMY["dob"], limit=1)
    assert ([i["id"] for i in limited["items"]], limited["truncated"]) == ([namesake], True)


def test_a_person_search_is_a_consultation_of_the_persons_returned(
    client: TestClient,
    submitter: dict[str, str],
    auditor: dict[str, str],
    make_key: KeyMaker,
    session: Session,
) -> None:
    ids = pauls_families(client, submitter, make_key)
    paul = person_id(client, auditor, ids["amy"], "p1")
    headers = {**auditor, "X-Purpose": "subject_access:SAR-2026-001"}

    find(client, headers, name="Paul Strand", date_of_birth=PAUL["dob"])
    find(client, headers, pnc="99/999999Z")

    seal_all(session)
    events = session.scalars(
        select(AuditEvent).where(AuditEvent.route == "GET /v1/persons").order_by(AuditEvent.seq)
    ).all()
    assert [(e.operation, e.record_type, e.purpose) for e in events] == [
        ("consult", "person", "subject_access:SAR-2026-001")
    ] * 2
    found, nothing = events
    assert found.record_ids == [paul]
    assert paul in found.person_ids
    assert found.detail == {"search": "name_dob", "count": 1}
    assert (nothing.record_ids, nothing.person_ids) == ([], [])
    assert nothing.detail == {"search": "pnc", "count": 0}
    for value in ("Paul", "Strand", PAUL["dob"], "99/999999Z"):
        assert value not in json.dumps(found.detail) + json.dumps(nothing.detail)


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({}, {"source_reference", "pnc", "name"}),
        ({"name": "Paul Strand"}, {"date_of_birth"}),
        ({"date_of_birth": "1986-06-03"}, {"date_of_birth"}),
        ({"pnc": PAUL_PNC, "name": "Paul Strand", "date_of_birth": "1986-06-03"}, {"pnc", "name"}),
        ({"name": "Strand", "date_of_birth": "1986-06-03"}, {"name"}),
    ],
)
def test_a_person_search_without_exactly_one_criterion_is_a_400(
    client: TestClient, triage: dict[str, str], params: dict[str, str], where: set[str]
) -> None:
    r = client.get("/v1/persons", params=params, headers=triage)
    assert r.status_code == 400, r.text
    assert {e["loc"][1] for e in r.json()["errors"]} == where
    assert "Strand" not in r.text


def test_a_person_search_needs_a_purpose_and_a_role_that_reads_persons(
    client: TestClient, triage: dict[str, str], make_key: KeyMaker
) -> None:
    headers = {k: v for k, v in triage.items() if k != "X-Purpose"}
    r = client.get("/v1/persons", params={"pnc": PAUL_PNC}, headers=headers)
    assert r.status_code == 400
    assert r.json()["type"].endswith("/purpose-required")
    for role, extra in (
        ("submitter", {}),
        ("agency", {"agency": "police"}),
        ("admin", {}),
    ):
        r = client.get("/v1/persons", params={"pnc": PAUL_PNC}, headers=make_key(role, **extra))
        assert r.status_code == 403, role
