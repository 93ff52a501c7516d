"""Rules versions through the API: version 2 by default, version 1 pinned for an area, and
the judgement of a child (rules v2, rule 7) recorded, audited and reproduced.
All data is invented (tests/data/README.md)."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessments.models import Judgement as JudgementRow
from app.audit.chain import seal_all
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from tests.conftest import KeyMaker, build_app

PINNED_AREA = "E09000018"
V1 = {
    "dash-ric": "dash-ric@1",
    "dash-police": "dash-police@1",
    "child-risk": "child-risk@1",
    "flags": "default-flags@1",
}
MARKER = "Zq-invented-marker-7"


@pytest.fixture
def pinned_client(
    settings: Settings, migrated_database: Database, connection: Any
) -> Iterator[TestClient]:
    pinned = settings.model_copy(update={"area_overrides": {PINNED_AREA: V1}})
    with TestClient(build_app(pinned, migrated_database, connection)) as client:
        yield client


def post(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/incidents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def test_new_assessments_use_version_2_and_an_area_can_pin_version_1(
    client: TestClient,
    pinned_client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
) -> None:
    now = post(client, submitter, incident)["assessment"]
    assert now["definitions"]["victim_checklist"]["version"] == "2"
    assert now["definitions"]["child_risk"]["version"] == "2"
    assert now["flag_rules"]["id"] == "default-flags"
    assert now["flag_rules"]["version"] == "2"
    assert "red_flag_high" in now["victim"]["marac"]["criteria"]

    other = copy.deepcopy(incident)
    other["source"]["reference"] = "PINNED-1"
    pinned = post(pinned_client, submitter, other)["assessment"]
    assert pinned["definitions"]["victim_checklist"]["version"] == "1"
    assert pinned["definitions"]["child_risk"]["version"] == "1"
    assert pinned["flag_rules"]["version"] == "1"
    assert "red_flag_high" not in pinned["victim"]["marac"]["criteria"]
    assert all("source" not in item for item in pinned["victim"]["items"])


def child_judgement(
    client: TestClient, headers: dict[str, str], incident_id: str, body: dict[str, Any]
) -> Any:
    return client.post(f"/v1/incidents/{incident_id}/judgements", json=body, headers=headers)


def test_a_judgement_of_a_child_raises_that_child_and_reproduces(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    make_key: KeyMaker,
    session: Session,
) -> None:
    triage, auditor = make_key("triage"), make_key("auditor")
    body = copy.deepcopy(incident)
    # One born child, not present, nothing recorded: moderate, one step up for age if young.
    body["persons"] = [p for p in body["persons"] if p["role"] != "child"] + [
        {"ref": "c9", "role": "child", "date_of_birth": "2012-05-01"}
    ]
    created = post(client, submitter, body)
    incident_id = created["incident_id"]
    [before] = created["assessment"]["children"]
    assert before["level"] == "serious"  # the victim is high

    r = child_judgement(
        client,
        triage,
        incident_id,
        {"subject_ref": "c9", "level": "severe", "rationale": "Disclosure at school (invented)."},
    )
    assert r.status_code == 201, r.text
    assessment = r.json()["assessment"]
    [after] = assessment["children"]
    assert (after["level"], after["recommended_response"]) == ("severe", "strategy_discussion")
    [judged] = [t for t in after["triggers"] if t["rule"] == "professional_judgement"]
    assert judged["fired"]
    assert judged["effect"] == "severe"
    assert assessment["victim"]["level"] == created["assessment"]["victim"]["level"]
    flags = {(f["type"], f["subject_ref"]) for f in r.json()["flags"]}
    assert ("children_social_care_referral", "c9") in flags

    [row] = session.scalars(select(JudgementRow).where(JudgementRow.subject_ref == "c9")).all()
    assert row.level == "severe"
    reproduced = client.post(
        f"/v1/assessments/{assessment['id']}/reproduce",
        headers={**auditor, "X-Purpose": "audit"},
    )
    assert reproduced.status_code == 200, reproduced.text
    assert reproduced.json()["identical"] is True
    explained = client.get(
        f"/v1/assessments/{assessment['id']}/explanation",
        headers={**auditor, "X-Purpose": "audit"},
    ).json()
    assert [(j["level"], j["subject_ref"]) for j in explained["judgements"]] == [("severe", "c9")]
    # The explanation shows where each effective answer came from (the example's
    # strangulation was seen by the officer).
    items = {i["id"]: i for i in explained["assessment"]["victim"]["items"]}
    assert items["strangulation"]["source"] == "observed"
    seal_all(session)
    details = [
        e.detail for e in session.scalars(select(AuditEvent).where(AuditEvent.operation == "alter"))
    ]
    assert {"judgement": "severe", "subject": "child"} in [
        {k: d.get(k) for k in ("judgement", "subject")} for d in details
    ]
    assert "Disclosure at school" not in str(details)  # the rationale is never in the log


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"subject_ref": "c9", "level": "severe", "rationale": " "}, 422),
        ({"subject_ref": "c9", "level": "high", "rationale": "x"}, 422),
        ({"level": "severe", "rationale": "x"}, 422),
        ({"subject_ref": MARKER, "level": "severe", "rationale": "x"}, 422),
        ({"subject_ref": "v1", "level": "severe", "rationale": "x"}, 422),
    ],
)
def test_a_judgement_of_a_child_is_refused_without_reasons_a_child_level_or_a_child(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    make_key: KeyMaker,
    body: dict[str, Any],
    status: int,
) -> None:
    triage = make_key("triage")
    data = copy.deepcopy(incident)
    data["persons"].append({"ref": "c9", "role": "child", "date_of_birth": "2012-05-01"})
    incident_id = post(client, submitter, data)["incident_id"]
    r = child_judgement(client, triage, incident_id, body)
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    assert MARKER not in r.text
    versions = client.get(f"/v1/incidents/{incident_id}/assessments", headers=triage).json()
    assert len(versions["assessments"]) == 1
