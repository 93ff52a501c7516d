"""Assessments through the API: versions, judgements, explanations, reproduction (both backends).

All incidents are invented test data derived from the contract's example.
"""

from __future__ import annotations

import copy
import json
import uuid
from dataclasses import replace
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessments.models import Assessment, DefinitionSnapshot
from app.config import Settings
from app.db import Database
from app.scoring.registry import DefinitionRegistry
from tests.conftest import KeyMaker, build_app

ALL_NO = {
    "current_injury": "no", "very_frightened": "no", "afraid_of_further_harm": "no",
    "isolated": "no", "depressed_or_suicidal": "no", "separation_past_year": "no",
    "child_contact_conflict": "no", "stalking_harassment": "no",
    "pregnant_or_recent_birth": "no", "abuse_more_often": "no", "abuse_getting_worse": "no",
    "controlling_or_jealous": "no", "weapons_used": "no", "threat_to_kill": "no",
    "strangulation": "no", "sexual_abuse": "no", "other_person_threat": "no",
    "harmed_others": "no", "animal_abuse": "no", "financial_issues": "no",
    "substance_or_mental_health": "no", "perpetrator_suicidal": "no",
    "breach_of_bail_or_order": "no", "criminal_history": "no",
}  # fmt: skip

# The first ten items that are not red flags: answering k of them "yes" scores k.
PLAIN_ITEMS = [
    "current_injury", "very_frightened", "afraid_of_further_harm", "isolated",
    "depressed_or_suicidal", "abuse_more_often", "sexual_abuse", "other_person_threat",
    "harmed_others", "animal_abuse", "financial_issues", "criminal_history",
    "breach_of_bail_or_order", "substance_or_mental_health",
]  # fmt: skip


def quiet_incident(incident: dict[str, Any], yes: int = 0, reference: str = "") -> dict[str, Any]:
    """The example incident with `yes` plain items answered yes, no history, no children."""
    d = copy.deepcopy(incident)
    answers = dict(ALL_NO)
    for item in PLAIN_ITEMS[:yes]:
        answers[item] = "yes"
    d["victim_checklist"]["answers"] = answers
    d["victim_checklist"]["comments"] = {}
    d["victim_history"] = {"prior_da_incidents_12m": 0}
    d["perpetrator_history"] = {"prior_da_victims": 0}
    d["persons"] = [p for p in d["persons"] if p["role"] != "child"]
    d["relationship"]["separation"] = {"status": "none"}
    # Rules v2 count what the officer saw and the victim's own view: none of either here.
    d["circumstances"] = {}
    d["officer_assessment"] = {}
    if reference:
        d["source"]["reference"] = reference
    return d


def post(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/incidents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_threshold_edges_through_the_api(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any]
) -> None:
    expected = {9: "standard", 10: "medium", 13: "medium", 14: "high"}
    for yes, level in expected.items():
        body = post(client, submitter, quiet_incident(incident, yes, f"EDGE-{yes}"))
        victim = body["assessment"]["victim"]
        assert (victim["score"], victim["level"]) == (yes, level)
        assert victim["marac"]["refer"] is (yes >= 14)
        # Every point is accounted for by an item with points 1 and answer yes.
        assert sum(i["points"] for i in victim["items"]) == victim["score"]
        assert all((i["points"] == 1) == (i["answer"] == "yes") for i in victim["items"])


def test_revision_adds_a_version_and_keeps_the_first(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], make_key: KeyMaker
) -> None:
    body = quiet_incident(incident, 9, "REV-1")
    first = post(client, submitter, body)
    incident_id = first["incident_id"]
    body["victim_checklist"]["answers"]["strangulation"] = "yes"
    r = client.post(f"/v1/incidents/{incident_id}/revisions", json=body, headers=submitter)
    assert r.status_code == 201, r.text
    second = r.json()
    assert second["assessment"]["version"] == 2
    assert second["assessment"]["victim"]["level"] == "medium"  # red flag raises 9 → medium
    listing = client.get(f"/v1/incidents/{incident_id}/assessments", headers=submitter).json()
    assert [a["version"] for a in listing["assessments"]] == [2, 1]
    assert listing["assessments"][1] == first["assessment"]
    # A revision may not move the incident to another source reference.
    body["source"]["reference"] = "REV-OTHER"
    r = client.post(f"/v1/incidents/{incident_id}/revisions", json=body, headers=submitter)
    assert r.status_code == 422


def test_judgement_raises_and_never_lowers(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], make_key: KeyMaker
) -> None:
    triage = make_key("triage")
    first = post(client, submitter, quiet_incident(incident, 11, "JUDGE-1"))
    incident_id = first["incident_id"]
    assert first["assessment"]["victim"]["level"] == "medium"
    url = f"/v1/incidents/{incident_id}/judgements"
    lower = client.post(url, json={"level": "standard", "rationale": "seems calm"}, headers=triage)
    assert lower.status_code == 201
    lowered = lower.json()["assessment"]
    assert lowered["victim"]["level"] == "medium"
    ignored = [t for t in lowered["victim"]["triggers"] if t["rule"] == "professional_judgement"]
    assert any("lower" in t["detail"] for t in ignored)
    raise_ = client.post(
        url, json={"level": "high", "rationale": "extreme fear; language barrier"}, headers=triage
    )
    raised = raise_.json()["assessment"]
    assert raised["version"] == 3
    assert raised["victim"]["level"] == "high"
    assert "professional_judgement" in raised["victim"]["marac"]["criteria"]
    flags = {f["type"] for f in raise_.json()["flags"]}
    assert {"marac_referral", "idva_referral"} <= flags
    no_reason = client.post(url, json={"level": "high", "rationale": " "}, headers=triage)
    assert no_reason.status_code == 422
    # Submitters do not judge.
    assert (
        client.post(url, json={"level": "high", "rationale": "x"}, headers=submitter).status_code
        == 403
    )


def test_explanation_accounts_for_every_point_and_names_definitions(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], make_key: KeyMaker
) -> None:
    auditor = make_key("auditor")
    created = post(client, submitter, incident)
    assessment_id = created["assessment"]["id"]
    r = client.get(f"/v1/assessments/{assessment_id}/explanation", headers=auditor)
    assert r.status_code == 200, r.text
    ex = r.json()
    assert ex["incident_id"] == created["incident_id"]
    victim = ex["assessment"]["victim"]
    yes_items = [i["id"] for i in victim["items"] if i["answer"] == "yes"]
    assert victim["score"] == len(yes_items) == 15
    assert (
        ex["inputs"]["incident"]["victim_checklist"]["answers"]
        == incident["victim_checklist"]["answers"]
    )
    kinds = {d["kind"]: d for d in ex["definitions"]}
    assert {"victim_checklist", "child_risk", "flag_rules"} <= set(kinds)
    assert kinds["victim_checklist"]["sha256"] == victim["checklist"]["sha256"]
    assert ex["submissions"][0]["submitted_by"] == "officer-4471"
    fired = {t["rule"] for t in victim["triggers"] if t["fired"]}
    assert {"visible_high_risk", "potential_escalation"} <= fired


def test_reproduce_is_identical_for_stored_assessments(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], make_key: KeyMaker
) -> None:
    auditor = make_key("auditor")
    created = post(client, submitter, incident)
    r = client.post(f"/v1/assessments/{created['assessment']['id']}/reproduce", headers=auditor)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "assessment_id": created["assessment"]["id"],
        "identical": True,
        "differences": [],
    }


def test_reproduce_reports_an_altered_stored_result(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    make_key: KeyMaker,
    session: Session,
) -> None:
    created = post(client, submitter, incident)
    row = session.get(Assessment, uuid.UUID(created["assessment"]["id"]))
    assert row is not None
    assert row.result is not None
    tampered = copy.deepcopy(row.result)
    tampered["victim"]["score"] = 3
    row.result = tampered
    session.commit()
    r = client.post(f"/v1/assessments/{row.id}/reproduce", headers=make_key("auditor"))
    body = r.json()
    assert body["identical"] is False
    assert any(d["path"] == "/victim/score" for d in body["differences"])


def test_area_version_changes_new_scores_and_old_ones_stay_reproducible(
    fresh_database: Database, make_key_fresh: Any, incident: dict[str, Any]
) -> None:
    base = Settings(environment="test", database_url=fresh_database.url)
    submitter = make_key_fresh(fresh_database)
    auditor = make_key_fresh(fresh_database, "auditor")
    with TestClient(build_app(base, fresh_database, None)) as c:
        old = post(c, submitter, quiet_incident(incident, 10, "AREA-OLD"))
    assert old["assessment"]["victim"]["level"] == "medium"
    # The area switches to its own version (different thresholds) by configuration.
    local = base.model_copy(
        update={"area_overrides": {incident["area"]: {"dash-ric": "dash-ric@local-example"}}}
    )
    with TestClient(build_app(local, fresh_database, None)) as c:
        new = post(c, submitter, quiet_incident(incident, 10, "AREA-NEW"))
        assert new["assessment"]["victim"]["checklist"]["version"] == "local-example"
        assert (
            new["assessment"]["victim"]["checklist"]["sha256"]
            != (old["assessment"]["victim"]["checklist"]["sha256"])
        )
        for created in (old, new):
            r = c.post(f"/v1/assessments/{created['assessment']['id']}/reproduce", headers=auditor)
            assert r.json()["identical"] is True, r.text
    with fresh_database.session() as s:
        versions = {snap.version for snap in s.scalars(select(DefinitionSnapshot))}
    assert {"1", "local-example"} <= versions
    # Even with the area file gone from the running service, the old score reproduces
    # from the definition snapshot stored with it.
    app = build_app(base, fresh_database, None)
    registry = app.state.scoring.definitions
    app.state.scoring = replace(
        app.state.scoring,
        definitions=DefinitionRegistry(
            {(d.ref.id, d.ref.version): d for d in registry if d.ref.version != "local-example"},
            registry.directory,
        ),
    )
    with TestClient(app) as c:
        r = c.post(f"/v1/assessments/{new['assessment']['id']}/reproduce", headers=auditor)
        assert r.json()["identical"] is True, r.text


def test_checklists_are_published_with_their_hashes(client: TestClient, make_key: KeyMaker) -> None:
    headers = make_key("triage")
    listing = client.get("/v1/checklists", headers=headers).json()
    ids = {(c["id"], c["version"]) for c in listing}
    assert {("dash-ric", "1"), ("dash-police", "1"), ("child-risk", "1")} <= ids
    one = client.get("/v1/checklists/dash-ric/versions/1", headers=headers).json()
    items = one["definition"]["items"]
    assert len(items) == 24
    assert client.get("/v1/checklists/dash-ric/versions/99", headers=headers).status_code == 404
    digest = next(c["sha256"] for c in listing if (c["id"], c["version"]) == ("dash-ric", "1"))
    assert one["sha256"] == digest
    assert json.dumps(one)  # serialisable as published
