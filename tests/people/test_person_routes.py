"""GET /v1/persons/{id} and its timeline: the MASH "brief chronology", scoped and audited.

All people, identifiers and references are invented test data.
"""

from __future__ import annotations

import uuid

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


def person_id(client: TestClient, headers: dict[str, str], incident_id: str, ref: str) -> str:
    r = client.get(f"/v1/incidents/{incident_id}", headers=headers)
    assert r.status_code == 200, r.text
    return str(next(p["person_id"] for p in r.json()["persons"] if p["ref"] == ref))


def pauls_families(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker
) -> dict[str, str]:
    amy = submit(
        client,
        submitter,
        make_incident(
            "TL-1",
            days_before(300),
            [
                victim(**AMY, pnc="95/100001A"),
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
            "TL-2",
            days_before(200),
            [victim(**AMY, pnc="95/100001A"), perpetrator(**PAUL, pnc=PAUL_PNC)],
            answers=MEDIUM_ANSWERS,
        ),
    )
    other = make_key("submitter", source_system="force-b-records")
    body = make_incident(
        "TL-3",
        days_before(100),
        [victim(**BETH, nhs="4010232137"), perpetrator(**PAUL, pnc=PAUL_PNC)],
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


def test_a_person_shows_roles_counts_and_identifier_schemes_but_not_values(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
    make_key: KeyMaker,
    session: Session,
) -> None:
    ids = pauls_families(client, submitter, make_key)
    paul = person_id(client, triage, ids["amy"], "p1")

    r = client.get(f"/v1/persons/{paul}", headers=triage)

    assert r.status_code == 200, r.text
    out = r.json()
    assert out["id"] == paul
    assert out["merged_into"] is None
    assert out["roles"] == ["perpetrator"]
    assert out["incident_count"] == 3
    assert out["identifier_schemes"] == ["pnc"]
    assert PAUL_PNC not in r.text
    assert out["name"] == {"given": "Paul", "family": "Strand"}
    assert out["date_of_birth"] == PAUL["dob"]
    assert out["links"] == {"identifier:pnc": 2, "new": 1}
    seal_all(session)  # reads' events wait to be chained on PostgreSQL
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.record_type == "person").order_by(AuditEvent.seq)
    ).all()[-1]
    assert (event.operation, event.purpose, event.person_ids) == (
        "consult",
        "triage",
        [paul],
    )


def test_the_timeline_lists_every_incident_newest_first_with_levels_criteria_and_flags(
    client: TestClient, submitter: dict[str, str], auditor: dict[str, str], make_key: KeyMaker
) -> None:
    ids = pauls_families(client, submitter, make_key)
    paul = person_id(client, auditor, ids["amy"], "p1")
    amy = person_id(client, auditor, ids["amy"], "v1")
    beth = person_id(client, auditor, ids["beth"], "v1")

    r = client.get(f"/v1/persons/{paul}/timeline", headers=auditor)

    assert r.status_code == 200, r.text
    out = r.json()
    entries = out["entries"]
    assert [e["incident_id"] for e in entries] == [ids["beth"], ids["amy_again"], ids["amy"]]
    assert all(e["role"] == "perpetrator" and e["in_scope"] for e in entries)
    assert [e["victim_person_id"] for e in entries] == [beth, amy, amy]
    oldest = entries[-1]
    assert oldest["victim_level"] == "high"
    assert oldest["marac_refer"] is True
    assert oldest["marac_criteria"] == ["visible_high_risk", "red_flag_high"]
    assert [c["person_ref"] for c in oldest["children"]] == ["c1"]
    assert oldest["children"][0]["level"] in ("serious", "severe")
    assert "marac_referral" in {f["type"] for f in oldest["flags"]}
    # Beth's incident: within a year of Amy's referral, but another victim: no repeat.
    assert "repeat_marac" not in entries[0]["marac_criteria"]
    assert entries[0]["perpetrator_serial"] is True
    # A perpetrator's chronology names each distinct victim.
    victims = {v["person_id"]: v for v in out["distinct_victims"]}
    assert set(victims) == {amy, beth}
    assert victims[amy]["incident_ids"] == [ids["amy"], ids["amy_again"]]
    assert victims[beth]["other_incidents"] == 0
    assert out["truncated"] is False

    r = client.get(f"/v1/persons/{paul}/timeline?limit=1", headers=auditor)
    assert [e["incident_id"] for e in r.json()["entries"]] == [ids["beth"]]
    assert r.json()["truncated"] is True


def test_triage_sees_other_areas_incidents_only_as_date_area_and_role(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
    make_key: KeyMaker,
    session: Session,
) -> None:
    ids = pauls_families(client, submitter, make_key)
    paul = person_id(client, triage, ids["amy"], "p1")

    r = client.get(f"/v1/persons/{paul}/timeline", headers=triage)

    assert r.status_code == 200, r.text
    out = r.json()
    newest = out["entries"][0]
    assert newest["in_scope"] is False
    assert newest["incident_id"] is None
    assert newest["area"] == OTHER_AREA
    assert newest["role"] == "perpetrator"
    assert newest["victim_person_id"] is None
    assert newest["flags"] == []
    assert ids["beth"] not in r.text
    [other] = [v for v in out["distinct_victims"] if v["incident_ids"] == []]
    assert other["other_incidents"] == 1
    # The audit event lists the incidents shown, not the hidden one.
    seal_all(session)
    event = session.scalars(
        select(AuditEvent).where(AuditEvent.record_type == "person").order_by(AuditEvent.seq)
    ).all()[-1]
    assert ids["beth"] not in event.record_ids
    assert ids["amy"] in event.record_ids

    # A triage user of the other area only cannot see Amy at all.
    amy = person_id(client, triage, ids["amy"], "v1")
    elsewhere = make_key("triage", areas=[OTHER_AREA])
    assert client.get(f"/v1/persons/{amy}", headers=elsewhere).status_code == 404
    assert client.get(f"/v1/persons/{paul}", headers=elsewhere).status_code == 200


def test_a_child_timeline_shows_both_households(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    milo = {"given": "Milo", "family": "Okafor", "dob": "2017-02-02"}
    first = submit(
        client,
        submitter,
        make_incident(
            "CH-1", days_before(50), [victim(**AMY), perpetrator(**PAUL), child("c1", **milo)]
        ),
    )
    second = submit(
        client,
        submitter,
        make_incident(
            "CH-2",
            days_before(10),
            [victim(**BETH), perpetrator("Quinn", "Harrow", "1979-12-24"), child("c3", **milo)],
        ),
    )
    milo_id = person_id(client, triage, first["incident_id"], "c1")
    r = client.get(f"/v1/persons/{milo_id}/timeline", headers=triage)
    entries = r.json()["entries"]
    assert [(e["incident_id"], e["role"], e["person_ref"]) for e in entries] == [
        (second["incident_id"], "child", "c3"),
        (first["incident_id"], "child", "c1"),
    ]
    assert entries[0]["link_rule"] == "name_dob"
    assert r.json()["distinct_victims"] == []


def test_person_reads_need_a_purpose_a_role_and_an_existing_person(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
    make_key: KeyMaker,
) -> None:
    created = submit(
        client,
        submitter,
        make_incident("P-1", days_before(1), [victim(**AMY), perpetrator(**PAUL)]),
    )
    amy = person_id(client, triage, created["incident_id"], "v1")
    for path in (f"/v1/persons/{amy}", f"/v1/persons/{amy}/timeline"):
        no_purpose = {k: v for k, v in triage.items() if k != "X-Purpose"}
        assert client.get(path, headers=no_purpose).status_code == 400
        for role in ("submitter", "admin"):
            assert client.get(path, headers=make_key(role)).status_code == 403
        assert client.get(path, headers=make_key("agency", agency="csc")).status_code == 403
        assert client.get(path, headers=make_key("auditor")).status_code == 200
    missing = uuid.uuid4()
    assert client.get(f"/v1/persons/{missing}", headers=triage).status_code == 404
