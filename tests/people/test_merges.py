"""Merging and unmerging persons corrects links for new assessments; old ones reproduce.

All people, identifiers and references are invented test data.
"""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import AuditEvent
from tests.conftest import KeyMaker
from tests.people.factories import (
    AMY,
    PAUL,
    days_before,
    make_incident,
    perpetrator,
    submit,
    trigger,
    victim,
)


def person_id(client: TestClient, headers: dict[str, str], incident_id: str, ref: str) -> str:
    r = client.get(f"/v1/incidents/{incident_id}", headers=headers)
    assert r.status_code == 200, r.text
    return str(next(p["person_id"] for p in r.json()["persons"] if p["ref"] == ref))


def amy(reference: str, days: float, source: str, **kwargs: Any) -> dict[str, Any]:
    # No date of birth: the two records of Amy can only be joined by hand.
    return make_incident(
        reference,
        days_before(days),
        [victim("Amy", "Okafor", source=source), perpetrator(**PAUL, pnc="86/200002B")],
        **kwargs,
    )


def reproduce(client: TestClient, headers: dict[str, str], assessment_id: str) -> Any:
    r = client.post(f"/v1/assessments/{assessment_id}/reproduce", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def stored_victim_incidents(result: dict[str, Any]) -> str:
    return str(trigger(result, "potential_escalation")["detail"])


def test_a_wrong_link_merged_and_unmerged_leaves_earlier_assessments_reproducible(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
    auditor: dict[str, str],
    session: Session,
) -> None:
    first = submit(client, submitter, amy("MRG-1", 200, "A-1"))
    second = submit(client, submitter, amy("MRG-2", 100, "A-2"))
    # Two records for Amy, so the perpetrator looks like he has two victims.
    assert second["assessment"]["perpetrator"]["serial"] is True
    amy_one = person_id(client, triage, first["incident_id"], "v1")
    amy_two = person_id(client, triage, second["incident_id"], "v1")
    assert amy_one != amy_two

    r = client.post(
        f"/v1/persons/{amy_two}/merge",
        json={"into": amy_one, "reason": "Same person: confirmed with the MASH police desk."},
        headers=triage,
    )
    assert r.status_code == 201, r.text
    merge = r.json()
    assert (merge["person_id"], merge["into_id"], merge["kind"]) == (amy_two, amy_one, "manual")

    # New assessments use the merged person: both earlier incidents count, one victim.
    third = submit(client, submitter, amy("MRG-3", 0, "A-2"))
    assert "potential_escalation" in third["assessment"]["victim"]["marac"]["criteria"]
    detail = stored_victim_incidents(third)
    assert first["incident_id"] in detail
    assert second["incident_id"] in detail
    assert third["assessment"]["perpetrator"]["serial"] is False

    # The merge was wrong after all.
    r = client.post(
        f"/v1/persons/{amy_two}/unmerge",
        json={"reason": "Different women: dates of birth differ on the records system."},
        headers=triage,
    )
    assert r.status_code == 200, r.text
    assert r.json()["undone_by"] is not None

    fourth = submit(client, submitter, amy("MRG-4", -1, "A-2"))
    detail = stored_victim_incidents(fourth)
    assert first["incident_id"] not in detail
    assert second["incident_id"] in detail
    assert third["incident_id"] in detail
    assert fourth["assessment"]["perpetrator"]["serial"] is True

    # Every assessment, made before, during and after the merge, reproduces exactly.
    for made in (first, second, third, fourth):
        result = reproduce(client, auditor, made["assessment"]["id"])
        assert result == {
            "assessment_id": made["assessment"]["id"],
            "identical": True,
            "differences": [],
        }

    # Both corrections are kept in the person's history, and in the audit log.
    r = client.get(f"/v1/persons/{amy_one}", headers=triage)
    assert r.status_code == 200, r.text
    [kept] = [m for m in r.json()["merges"] if m["kind"] == "manual"]
    assert kept["id"] == merge["id"]
    assert kept["undone_at"] is not None
    assert kept["undo_reason"].startswith("Different women")
    combine = list(session.scalars(select(AuditEvent).where(AuditEvent.operation == "combine")))
    # The automatic links at intake (the perpetrator, known from the first incident) are
    # combinations too; the two corrections are the merge and the unmerge.
    corrections = [e for e in combine if e.detail["action"] != "link"]
    assert [e.detail["action"] for e in corrections] == ["merge", "unmerge"]
    assert all(set(e.person_ids) >= {amy_one, amy_two} for e in corrections)
    assert all(e.detail["rule"] != "new" for e in combine if e.detail["action"] == "link")


def test_an_automatic_name_and_dob_link_can_be_undone(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    def amy_dob(reference: str, days: float) -> dict[str, Any]:
        return make_incident(
            reference, days_before(days), [victim(**AMY), perpetrator(**PAUL, pnc="86/200002B")]
        )

    first = submit(client, submitter, amy_dob("AUTO-1", 20))
    second = submit(client, submitter, amy_dob("AUTO-2", 10))
    amy_one = person_id(client, triage, first["incident_id"], "v1")
    record = person_id(client, triage, second["incident_id"], "v1")
    r = client.get(f"/v1/persons/{record}", headers=triage)
    assert r.json()["merged_into"] == amy_one
    assert r.json()["links"] == {"name_dob": 1}

    r = client.post(
        f"/v1/persons/{record}/unmerge",
        json={"reason": "Two different women share this name and date of birth."},
        headers=triage,
    )
    assert r.status_code == 200, r.text
    assert r.json()["kind"] == "name_dob"

    # The key is now known to be ambiguous: name and date of birth link nobody.
    third = submit(client, submitter, amy_dob("AUTO-3", 0))
    r = client.get(
        f"/v1/persons/{person_id(client, triage, third['incident_id'], 'v1')}", headers=triage
    )
    assert r.json()["merged_into"] is None
    assert r.json()["links"] == {"new": 1}


def test_merge_and_unmerge_refuse_what_makes_no_sense(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    first = submit(client, submitter, amy("BAD-1", 20, "A-1"))
    second = submit(client, submitter, amy("BAD-2", 10, "A-2"))
    one = person_id(client, triage, first["incident_id"], "v1")
    two = person_id(client, triage, second["incident_id"], "v1")
    paul = person_id(client, triage, first["incident_id"], "p1")
    reason = {"reason": "Checked against the records system."}

    r = client.post(f"/v1/persons/{one}/merge", json={"into": one, **reason}, headers=triage)
    assert r.status_code == 422
    r = client.post(f"/v1/persons/{one}/unmerge", json=reason, headers=triage)
    assert r.status_code == 409
    r = client.post(f"/v1/persons/{two}/merge", json={"into": one, "reason": ""}, headers=triage)
    assert r.status_code == 422

    r = client.post(f"/v1/persons/{two}/merge", json={"into": one, **reason}, headers=triage)
    assert r.status_code == 201
    # The same merge again is a replay, not a second merge.
    again = client.post(f"/v1/persons/{two}/merge", json={"into": one, **reason}, headers=triage)
    assert (again.status_code, again.json()["id"]) == (200, r.json()["id"])
    # Merged elsewhere: unmerge first. Into a record of its own cluster: already one.
    r = client.post(f"/v1/persons/{two}/merge", json={"into": paul, **reason}, headers=triage)
    assert r.status_code == 409
    r = client.post(f"/v1/persons/{one}/merge", json={"into": two, **reason}, headers=triage)
    assert r.status_code == 409
    r = client.post(
        f"/v1/persons/{one}/merge",
        json={"into": "00000000-0000-4000-8000-000000000000", **reason},
        headers=triage,
    )
    assert r.status_code == 404


def test_only_triage_merges_and_only_within_its_areas(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker, auditor: dict[str, str]
) -> None:
    first = submit(client, submitter, amy("ROLE-1", 20, "A-1"))
    second = submit(client, submitter, amy("ROLE-2", 10, "A-2"))
    one = person_id(client, auditor, first["incident_id"], "v1")
    two = person_id(client, auditor, second["incident_id"], "v1")
    body = {"into": one, "reason": "Checked against the records system."}
    for headers in (auditor, submitter, make_key("admin"), make_key("agency", agency="csc")):
        r = client.post(f"/v1/persons/{two}/merge", json=body, headers=headers)
        assert r.status_code == 403
    elsewhere = make_key("triage", areas=["E09000020"])
    r = client.post(f"/v1/persons/{two}/merge", json=body, headers=elsewhere)
    assert r.status_code == 404
