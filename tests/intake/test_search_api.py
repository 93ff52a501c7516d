"""GET /v1/incidents?…: finding incidents by source reference, PNC id, or name and date of
birth; within scope, with a purpose, audited without the values searched for.

Every name, date of birth, identifier and reference here is invented test data.
"""

from __future__ import annotations

import json
import uuid
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
    HIGH_ANSWERS,
    MEDIUM_ANSWERS,
    OTHER_AREA,
    PAUL,
    child,
    days_before,
    make_incident,
    perpetrator,
    submit,
    victim,
)

PAUL_PNC = "86/200002B"
AMY_PNC = "95/100001A"
PROBLEM = "application/problem+json"


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


@pytest.fixture
def triage_b(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage", areas=[OTHER_AREA])


@pytest.fixture
def auditor(make_key: KeyMaker) -> dict[str, str]:
    return {**make_key("auditor"), "X-Purpose": "audit"}


@pytest.fixture
def families(client: TestClient, submitter: dict[str, str], make_key: KeyMaker) -> dict[str, str]:
    """Paul's incidents: two with Amy (area A, one with a child), one with Beth (area B)."""
    amy = submit(
        client,
        submitter,
        make_incident(
            "SR-1",
            days_before(300),
            [
                victim(**AMY, pnc=AMY_PNC),
                perpetrator(**PAUL, pnc=PAUL_PNC),
                child("c1", "Milo", "Okafor", "2017-02-02"),
            ],
            answers=HIGH_ANSWERS,
        ),
    )
    amy_again = submit(
        client,
        submitter,
        make_incident(
            "SR-2",
            days_before(200),
            [victim(**AMY, pnc=AMY_PNC), perpetrator(**PAUL, pnc=PAUL_PNC)],
            answers=MEDIUM_ANSWERS,
        ),
    )
    other = make_key("submitter", source_system="force-b-records")
    body = make_incident(
        "SR-1",  # the same reference in another system
        days_before(100),
        [victim(**BETH), perpetrator(**PAUL, pnc=PAUL_PNC)],
        answers=MEDIUM_ANSWERS,
        area=OTHER_AREA,
    )
    body["source"]["system"] = "force-b-records"
    beth = submit(client, other, body)
    return {
        "amy": amy["incident_id"],
        "amy_again": amy_again["incident_id"],
        "beth": beth["incident_id"],
    }


def search(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/v1/incidents", params=params, headers=headers)
    assert r.status_code == 200, r.text
    out: dict[str, Any] = r.json()
    return out


def ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def last_search_event(session: Session) -> AuditEvent:
    seal_all(session)  # reads' events wait to be chained
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.route == "GET /v1/incidents")
        .order_by(AuditEvent.seq.desc())
        .limit(1)
    ).all()
    assert events, "the search was not audited"
    return events[0]


# --------------------------------------------------------------------------- criteria


def test_by_source_reference_within_the_callers_areas(
    client: TestClient,
    families: dict[str, str],
    triage: dict[str, str],
    triage_b: dict[str, str],
    auditor: dict[str, str],
) -> None:
    # The reference is in both systems; triage of area A sees only its own incident.
    assert ids(search(client, triage, source_reference="SR-1")) == [families["amy"]]
    assert ids(search(client, triage_b, source_reference="SR-1")) == [families["beth"]]
    assert ids(search(client, auditor, source_reference="SR-1")) == [
        families["beth"],
        families["amy"],
    ]
    narrowed = search(client, auditor, source_reference="SR-1", source_system="force-a-records")
    assert ids(narrowed) == [families["amy"]]
    assert ids(search(client, triage, source_reference="SR-404")) == []


def test_a_summary_has_the_levels_children_marac_and_links_but_no_narrative(
    client: TestClient, families: dict[str, str], triage: dict[str, str]
) -> None:
    page = search(client, triage, source_reference="SR-1")
    (item,) = page["items"]
    assert page["next_cursor"] is None
    assert item["source_system"] == "force-a-records"
    assert item["source_reference"] == "SR-1"
    assert item["area"] == "E09000018"
    assert item["victim_level"] == "high"
    assert item["marac_refer"] is True
    assert item["children"] == 1
    assert item["highest_child_level"] in ("serious", "severe")
    assert item["matched_roles"] == []
    assert item["links"] == {
        "self": f"/v1/incidents/{families['amy']}",
        "assessments": f"/v1/incidents/{families['amy']}/assessments",
    }
    assert set(item) == {
        "id",
        "source_system",
        "source_reference",
        "area",
        "occurred_at",
        "received_at",
        "victim_level",
        "highest_child_level",
        "children",
        "marac_refer",
        "matched_roles",
        "links",
    }
    for absent in ("Amy", "Okafor", "Milo", AMY["dob"], AMY_PNC):
        assert absent not in json.dumps(page)


def test_by_pnc_written_another_way_finds_the_persons_incidents_newest_first(
    client: TestClient,
    families: dict[str, str],
    triage: dict[str, str],
    triage_b: dict[str, str],
    auditor: dict[str, str],
) -> None:
    # "1986/0200002B" is stored as "86/200002B" (two-digit year, no leading zeros).
    page = search(client, auditor, pnc=" 1986/0200002b ")
    assert ids(page) == [families["beth"], families["amy_again"], families["amy"]]
    assert {tuple(i["matched_roles"]) for i in page["items"]} == {("perpetrator",)}
    # Scope: a triage key of area A never sees area B's incident, nor B's of A's.
    assert ids(search(client, triage, pnc=PAUL_PNC)) == [families["amy_again"], families["amy"]]
    assert ids(search(client, triage_b, pnc=PAUL_PNC)) == [families["beth"]]
    assert ids(search(client, triage, pnc=AMY_PNC)) == [families["amy_again"], families["amy"]]
    assert ids(search(client, triage_b, pnc=AMY_PNC)) == []
    assert ids(search(client, triage, pnc="99/999999Z")) == []


def test_by_name_and_date_of_birth_ignoring_case_spaces_and_accents(
    client: TestClient,
    families: dict[str, str],
    triage: dict[str, str],
    auditor: dict[str, str],
) -> None:
    found = search(client, triage, name="  pAUL   strand ", date_of_birth=PAUL["dob"])
    assert ids(found) == [families["amy_again"], families["amy"]]
    # Beth was recorded without a PNC id: found by her name, in area B only.
    beth = search(client, auditor, name="Béth Lindqvist", date_of_birth=BETH["dob"])
    assert ids(beth) == [families["beth"]]
    assert beth["items"][0]["matched_roles"] == ["victim"]
    assert ids(search(client, triage, name="Beth Lindqvist", date_of_birth=BETH["dob"])) == []
    # Another date of birth, or a part of the name only, finds no one.
    assert ids(search(client, auditor, name="Paul Strand", date_of_birth="1986-06-04")) == []
    assert ids(search(client, auditor, name="Paul Stran", date_of_birth=PAUL["dob"])) == []


def test_a_name_of_several_parts_is_tried_at_every_split(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    created = submit(
        client,
        submitter,
        make_incident(
            "SR-9",
            days_before(10),
            [
                victim("Mary Ann", "Van der Berg", "1990-02-03"),
                perpetrator("Tom", "Ashdown", "1989-05-06"),
            ],
        ),
    )
    found = search(client, triage, name="mary ann van der berg", date_of_birth="1990-02-03")
    assert ids(found) == [created["incident_id"]]
    assert found["items"][0]["matched_roles"] == ["victim"]


def test_pages_follow_the_cursor_and_a_cursor_belongs_to_its_search(
    client: TestClient, families: dict[str, str], auditor: dict[str, str]
) -> None:
    first = search(client, auditor, pnc=PAUL_PNC, limit=2)
    assert ids(first) == [families["beth"], families["amy_again"]]
    assert first["next_cursor"]
    second = search(client, auditor, pnc=PAUL_PNC, limit=2, cursor=first["next_cursor"])
    assert ids(second) == [families["amy"]]
    assert second["next_cursor"] is None
    r = client.get(
        "/v1/incidents",
        params={"pnc": AMY_PNC, "cursor": first["next_cursor"]},
        headers=auditor,
    )
    assert r.status_code == 400
    r = client.get("/v1/incidents", params={"pnc": PAUL_PNC, "cursor": "x"}, headers=auditor)
    assert r.status_code == 400


def test_an_erased_incident_is_found_by_no_search(
    client: TestClient, families: dict[str, str], make_key: KeyMaker, auditor: dict[str, str]
) -> None:
    r = client.post(
        f"/v1/incidents/{families['beth']}/erase",
        json={"reason": "test: retention review decided to dispose"},
        headers=make_key("admin"),
    )
    assert r.status_code == 200, r.text
    assert families["beth"] not in ids(search(client, auditor, pnc=PAUL_PNC))
    assert ids(search(client, auditor, source_reference="SR-1")) == [families["amy"]]
    assert ids(search(client, auditor, name="Beth Lindqvist", date_of_birth=BETH["dob"])) == []


# --------------------------------------------------------------------------- refusals


@pytest.mark.parametrize(
    ("params", "where"),
    [
        ({}, {"source_reference", "pnc", "name"}),
        ({"name": "Paul Strand"}, {"date_of_birth"}),
        ({"date_of_birth": "1986-06-03"}, {"date_of_birth"}),
        ({"source_system": "force-a-records"}, {"source_system"}),
        ({"pnc": PAUL_PNC, "name": "Paul Strand", "date_of_birth": "1986-06-03"}, {"pnc", "name"}),
        ({"source_reference": "SR-1", "pnc": PAUL_PNC}, {"source_reference", "pnc"}),
        ({"name": "Strand", "date_of_birth": "1986-06-03"}, {"name"}),
        ({"name": " ".join(["Paul"] * 11), "date_of_birth": "1986-06-03"}, {"name"}),
        ({"pnc": "   "}, {"pnc"}),
    ],
)
def test_a_search_without_exactly_one_whole_criterion_is_a_400_that_quotes_nothing(
    client: TestClient,
    triage: dict[str, str],
    session: Session,
    params: dict[str, str],
    where: set[str],
) -> None:
    r = client.get("/v1/incidents", params=params, headers=triage)
    assert r.status_code == 400, r.text
    assert r.headers["content-type"] == PROBLEM
    assert {e["loc"][1] for e in r.json()["errors"]} == where
    for value in params.values():
        if value.strip():
            assert value not in r.text
    seal_all(session)
    assert not session.scalars(
        select(AuditEvent).where(AuditEvent.route == "GET /v1/incidents")
    ).all()


def test_invalid_values_are_a_422_that_quotes_nothing(
    client: TestClient, triage: dict[str, str]
) -> None:
    for params in (
        {"source_reference": "Paul Strand"},  # not a reference's shape
        {"name": "Paul Strand", "date_of_birth": "Strand-1986"},
        {"name": "Paul Strand", "date_of_birth": "1786-06-03"},
    ):
        r = client.get("/v1/incidents", params=params, headers=triage)
        assert r.status_code == 422, r.text
        assert "Strand" not in r.text
        assert "1786" not in r.text


def test_a_search_needs_a_purpose(client: TestClient, triage: dict[str, str]) -> None:
    headers = {k: v for k, v in triage.items() if k != "X-Purpose"}
    r = client.get("/v1/incidents", params={"pnc": PAUL_PNC}, headers=headers)
    assert r.status_code == 400
    assert r.json()["type"].endswith("/purpose-required")


@pytest.mark.parametrize(
    ("role", "extra"),
    [
        ("submitter", {"source_system": "force-a-records"}),
        ("agency", {"agency": "csc"}),
        ("admin", {}),
    ],
)
def test_only_triage_and_auditors_search(
    client: TestClient,
    families: dict[str, str],
    make_key: KeyMaker,
    role: str,
    extra: dict[str, Any],
) -> None:
    r = client.get(
        "/v1/incidents", params={"source_reference": "SR-1"}, headers=make_key(role, **extra)
    )
    assert r.status_code == 403
    assert "SR-1" not in r.text
    assert client.get("/v1/incidents", params={"source_reference": "SR-1"}).status_code == 401


# --------------------------------------------------------------------------- audit


def test_a_search_is_a_consultation_of_what_it_returned_without_the_values(
    client: TestClient, families: dict[str, str], triage: dict[str, str], session: Session
) -> None:
    headers = {**triage, "X-Purpose": "marac:MARAC-2026-0147"}
    page = search(client, headers, name="Paul Strand", date_of_birth=PAUL["dob"])
    event = last_search_event(session)
    assert event.operation == "consult"
    assert event.record_type == "incident"
    assert event.purpose == "marac:MARAC-2026-0147"
    assert event.record_ids == ids(page) == [families["amy_again"], families["amy"]]
    # Everyone in the incidents returned: Amy, Paul and the child.
    assert len(event.person_ids) == 3
    uuid.UUID(event.person_ids[0])
    assert event.detail == {"search": "name_dob", "count": 2}
    stored = json.dumps(
        {"detail": event.detail, "record_ids": event.record_ids, "route": event.route}
    )
    for value in ("Paul", "Strand", PAUL["dob"], PAUL_PNC):
        assert value not in stored


def test_a_search_that_finds_nothing_is_audited_too(
    client: TestClient, families: dict[str, str], triage: dict[str, str], session: Session
) -> None:
    assert ids(search(client, triage, pnc="99/999999Z")) == []
    event = last_search_event(session)
    assert (event.operation, event.record_ids, event.person_ids) == ("consult", [], [])
    assert event.purpose == "triage"
    assert event.detail == {"search": "pnc", "count": 0}
