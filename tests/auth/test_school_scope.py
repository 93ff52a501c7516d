"""School keys see only the flags about their own pupils (rules version 2).

A school principal names its schools (URNs); every flag stores the school its subject
child attends (``flags.school_urn``, from the incident as stored). A school sees a flag
only when that school is one of its own, and of an incident only those pupils; any other
flag is the same 404 as one that does not exist. On both databases.

The world: incident 1 in area A has child ``c1`` at school A and child ``c3`` at school B;
incident 2 (another household, area A) has child ``c1`` at school B. All invented: the
URNs, names and dates describe no real school, child or incident.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.chain import seal_all
from app.audit.models import AuditEvent
from app.flags.models import Flag
from tests.auth import scenario
from tests.auth.scenario import (
    AREA_A,
    PROBLEM,
    incident_body,
    post_incident,
    set_flags,
    unlinked,
)
from tests.conftest import KeyMaker

client = scenario.client
module_app = scenario.module_app

SCHOOL_A = "100123"  # the school of the contract example's child
SCHOOL_B = "20045678"
PURPOSE = {"X-Purpose": "safeguarding_referral"}


def two_schools_incident() -> dict[str, Any]:
    """The example incident with a second child, ``c3``, at another school."""
    body = unlinked(incident_body(area=AREA_A))
    c1 = next(p for p in body["persons"] if p["ref"] == "c1")
    assert c1["child"]["school"]["urn"] == SCHOOL_A
    c3 = copy.deepcopy(c1)
    c3["ref"] = "c3"
    c3["name"]["given"] = "Wrenna"
    c3["date_of_birth"] = "2016-02-03"
    c3["child"]["school"] = {"name": "Invented Academy", "urn": SCHOOL_B}
    c3["child"]["account"] = "Invented: said she stayed upstairs with her headphones on."
    body["persons"].append(c3)
    return body


def other_household_at_school_b() -> dict[str, Any]:
    body = unlinked(incident_body(area=AREA_A))
    c1 = next(p for p in body["persons"] if p["ref"] == "c1")
    c1["name"]["given"] = "Tamsin"
    c1["child"]["school"] = {"name": "Invented Academy", "urn": SCHOOL_B}
    return body


@dataclass(frozen=True)
class Schools:
    headers: dict[str, dict[str, str]]
    incident_1: str
    incident_2: str
    pupil_a: str  # the school flag about c1 of incident 1 (school A)
    pupil_b: str  # the school flag about c3 of incident 1 (school B)
    other_b: str  # the school flag about c1 of incident 2 (school B)


@pytest.fixture
def schools(client: TestClient, make_key: KeyMaker, session: Session) -> Schools:
    submitter = make_key("submitter")
    incident_1 = post_incident(client, submitter, two_schools_incident())
    incident_2 = post_incident(client, submitter, other_household_at_school_b())
    flags_1 = set_flags(session, incident_1, ("school", "c1"), ("school", "c3"))
    flags_2 = set_flags(session, incident_2, ("school", "c1"))

    def school(*urns: str) -> dict[str, str]:
        return {**make_key("agency", agency="school", schools=list(urns)), **PURPOSE}

    return Schools(
        headers={
            "submitter": submitter,
            "a": school(SCHOOL_A),
            "b": school(SCHOOL_B),
            "ab": school(SCHOOL_A, SCHOOL_B),
            "triage": {**make_key("triage"), **PURPOSE},
            "admin": make_key("admin"),
        },
        incident_1=incident_1,
        incident_2=incident_2,
        pupil_a=str(flags_1[("school", "c1")].id),
        pupil_b=str(flags_1[("school", "c3")].id),
        other_b=str(flags_2[("school", "c1")].id),
    )


def listed(client: TestClient, headers: dict[str, str], **params: Any) -> list[str]:
    """Every flag id of the listing, page by page."""
    ids: list[str] = []
    cursor = None
    while True:
        query = {**params, **({"cursor": cursor} if cursor else {})}
        r = client.get("/v1/flags", params=query, headers=headers)
        assert r.status_code == 200, r.text
        ids += [f["id"] for f in r.json()["items"]]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return ids


def audit_count(session: Session) -> int:
    seal_all(session)
    return int(session.scalar(select(func.count()).select_from(AuditEvent)) or 0)


# --------------------------------------------------------------------------- storage


def test_intake_stores_the_school_of_each_flags_subject_child(
    client: TestClient, make_key: KeyMaker, session: Session
) -> None:
    iid = post_incident(client, make_key("submitter"), two_schools_incident())
    flags = session.scalars(select(Flag).where(Flag.incident_id == uuid.UUID(iid))).all()
    by_child = {(f.subject_ref, f.school_urn) for f in flags if f.subject_kind == "child"}
    assert ("c1", SCHOOL_A) in by_child
    assert ("c3", SCHOOL_B) in by_child
    assert {urn for ref, urn in by_child if ref == "c2"} <= {None}  # unborn: no school
    assert all(f.school_urn is None for f in flags if f.subject_kind != "child")
    # The school flags intake raised: each school sees its own pupil's only.
    school_a = make_key("agency", agency="school", schools=[SCHOOL_A])
    mine = client.get("/v1/flags", params={"incident_id": iid}, headers=school_a).json()
    assert mine["items"]
    assert {f["subject_ref"] for f in mine["items"]} == {"c1"}


# --------------------------------------------------------------------------- one flag


def test_a_school_sees_its_pupils_flag_and_not_another_schools_in_any_incident(
    client: TestClient, schools: Schools, session: Session
) -> None:
    a = schools.headers["a"]
    assert client.get(f"/v1/flags/{schools.pupil_a}", headers=a).status_code == 200
    absent = client.get(f"/v1/flags/{uuid.uuid4()}", headers=a)
    assert absent.status_code == 404
    before = audit_count(session)
    for other in (schools.pupil_b, schools.other_b):  # same incident, another incident
        r = client.get(f"/v1/flags/{other}", headers=a)
        assert r.status_code == 404  # never 403: nothing says that it exists
        assert r.headers["content-type"] == PROBLEM
        assert r.json() == absent.json()
        assert other not in r.text
        assert client.get(f"/v1/flags/{other}/history", headers=a).status_code == 404
        note = client.post(f"/v1/flags/{other}/notes", json={"text": "x"}, headers=a)
        assert note.status_code == 404
        change = client.patch(
            f"/v1/flags/{other}",
            json={"status": "acknowledged"},
            headers={**a, "If-Match": "*"},
        )
        assert change.status_code == 404
    assert audit_count(session) == before  # refusals log nothing
    b = schools.headers["b"]
    assert client.get(f"/v1/flags/{schools.pupil_b}", headers=b).status_code == 200
    assert client.get(f"/v1/flags/{schools.other_b}", headers=b).status_code == 200
    assert client.get(f"/v1/flags/{schools.pupil_a}", headers=b).status_code == 404


def test_a_school_works_its_pupils_flag(client: TestClient, schools: Schools) -> None:
    a = schools.headers["a"]
    r = client.patch(
        f"/v1/flags/{schools.pupil_a}",
        json={"status": "acknowledged"},
        headers={**a, "If-Match": "*"},
    )
    assert r.status_code == 200, r.text
    note = client.post(
        f"/v1/flags/{schools.pupil_a}/notes", json={"text": "Invented: seen."}, headers=a
    )
    assert note.status_code == 201


def test_a_reading_school_is_logged_as_a_disclosure_to_the_school(
    client: TestClient, schools: Schools, session: Session
) -> None:
    before = audit_count(session)
    r = client.get(f"/v1/flags/{schools.pupil_a}", headers=schools.headers["a"])
    assert r.status_code == 200
    seal_all(session)
    new = session.scalars(select(AuditEvent).order_by(AuditEvent.seq)).all()[before:]
    assert sorted(e.operation for e in new) == ["consult", "disclose"]
    disclose = next(e for e in new if e.operation == "disclose")
    assert disclose.recipients == ["agency:school"]
    assert disclose.record_ids == [schools.pupil_a]
    assert all(SCHOOL_A not in str(e.detail) for e in new)


# --------------------------------------------------------------------------- listings


def test_a_schools_flag_list_shows_only_its_pupils(client: TestClient, schools: Schools) -> None:
    assert listed(client, schools.headers["a"]) == [schools.pupil_a]
    assert sorted(listed(client, schools.headers["b"])) == sorted(
        [schools.pupil_b, schools.other_b]
    )
    # Filters narrow within the scope, never widen it.
    assert listed(client, schools.headers["a"], incident_id=schools.incident_2) == []
    assert listed(client, schools.headers["a"], agency="csc") == []
    assert listed(client, schools.headers["a"], subject="child", area=AREA_A) == [schools.pupil_a]


def test_a_key_for_two_schools_sees_both_schools_pupils_page_by_page(
    client: TestClient, schools: Schools
) -> None:
    everything = {schools.pupil_a, schools.pupil_b, schools.other_b}
    ab = schools.headers["ab"]
    assert set(listed(client, ab)) == everything
    paged = listed(client, ab, limit=1)
    assert len(paged) == len(set(paged)) == 3
    assert set(paged) == everything
    # The same order as triage's listing of the same flags.
    triage = listed(client, schools.headers["triage"], agency="school", limit=1)
    assert [i for i in triage if i in everything] == paged


# --------------------------------------------------------------------------- incidents


def test_a_school_reads_of_an_incident_its_own_pupils_only(
    client: TestClient, schools: Schools
) -> None:
    url = f"/v1/incidents/{schools.incident_1}"
    for who, pupil, other in (("a", "c1", "c3"), ("b", "c3", "c1")):
        r = client.get(url, headers=schools.headers[who])
        assert r.status_code == 200, r.text
        out = r.json()
        assert set(out["incident"]) == {"persons", "occurred_at", "area"}
        assert [p["ref"] for p in out["incident"]["persons"]] == [pupil]
        assert [p["ref"] for p in out["persons"]] == [pupil]
        assert [f["subject_ref"] for f in out["flags"]] == [pupil]
        assert all("account" not in p["child"] for p in out["incident"]["persons"])
        other_name = "Leo" if other == "c1" else "Wrenna"
        assert other_name not in r.text
    both = client.get(url, headers=schools.headers["ab"]).json()
    assert sorted(p["ref"] for p in both["incident"]["persons"]) == ["c1", "c3"]
    # Incident 2 has no pupil of school A: the same 404 as an incident that does not exist.
    hidden = client.get(f"/v1/incidents/{schools.incident_2}", headers=schools.headers["a"])
    absent = client.get(f"/v1/incidents/{uuid.uuid4()}", headers=schools.headers["a"])
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()


def test_a_school_cannot_reach_the_routes_schools_never_had(
    client: TestClient, schools: Schools
) -> None:
    a = schools.headers["a"]
    assert client.get("/v1/queue", headers=a).status_code == 403
    disclosures = f"/v1/incidents/{schools.incident_1}/disclosures"
    assert client.get(disclosures, headers=a).status_code == 403
    assessments = f"/v1/incidents/{schools.incident_1}/assessments"
    assert client.get(assessments, headers=a).status_code == 403


# --------------------------------------------------------------------------- changes


def test_a_revision_that_corrects_the_childs_school_moves_the_childs_flags(
    client: TestClient, make_key: KeyMaker, session: Session
) -> None:
    submitter = make_key("submitter")
    body = unlinked(incident_body(area=AREA_A))
    iid = post_incident(client, submitter, body)
    school_a = {**make_key("agency", agency="school", schools=[SCHOOL_A]), **PURPOSE}
    school_b = {**make_key("agency", agency="school", schools=[SCHOOL_B]), **PURPOSE}
    mine = listed(client, school_a, incident_id=iid)
    assert mine
    assert listed(client, school_b, incident_id=iid) == []
    revised = copy.deepcopy(body)
    c1 = next(p for p in revised["persons"] if p["ref"] == "c1")
    c1["child"]["school"] = {"name": "Invented Academy", "urn": SCHOOL_B}
    r = client.post(f"/v1/incidents/{iid}/revisions", json=revised, headers=submitter)
    assert r.status_code == 201, r.text
    assert listed(client, school_a, incident_id=iid) == []
    assert client.get(f"/v1/flags/{mine[0]}", headers=school_a).status_code == 404
    assert set(mine) <= set(listed(client, school_b, incident_id=iid))
    assert client.get(f"/v1/incidents/{iid}", headers=school_a).status_code == 404
    assert client.get(f"/v1/incidents/{iid}", headers=school_b).status_code == 200


def test_erasure_takes_the_school_off_the_flags(
    client: TestClient, schools: Schools, session: Session
) -> None:
    r = client.post(
        f"/v1/incidents/{schools.incident_1}/erase",
        json={"reason": "test: retention review decided to dispose"},
        headers=schools.headers["admin"],
    )
    assert r.status_code == 200
    session.expire_all()
    flags = session.scalars(
        select(Flag).where(Flag.incident_id == uuid.UUID(schools.incident_1))
    ).all()
    assert all(f.school_urn is None for f in flags)
    assert (
        client.get(f"/v1/flags/{schools.pupil_a}", headers=schools.headers["a"]).status_code == 404
    )
    # The other incident's flags are untouched.
    assert (
        client.get(f"/v1/flags/{schools.other_b}", headers=schools.headers["b"]).status_code == 200
    )
