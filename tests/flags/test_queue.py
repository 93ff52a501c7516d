"""GET /v1/queue: incidents for MASH triage, highest risk first, then the earliest due open
flag; rows kept in step with flags and assessments; stable pages; the overdue gauge.

All data is invented (tests/data/README.md). Incidents are dated in 2020 (every flag long
overdue) or 2030 (none due yet), so that nothing depends on today's date.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

from app.config import Settings
from app.db import Database
from tests.conftest import KeyMaker, build_app
from tests.flags.api_helpers import (
    AREA_B,
    flags_of,
    incident_at,
    list_flags,
    one_flag,
    patch_flag,
    post_incident,
    utc,
)


def victim_only(reported_at: str, *, yes: tuple[str, ...] = ()) -> dict[str, Any]:
    """The example without children or escalation history: the victim's level comes only
    from the answers given as ``yes`` (the perpetrator stays serial: one prior victim)."""
    body = incident_at(reported_at)
    body["persons"] = [p for p in body["persons"] if p["role"] != "child"]
    answers = body["victim_checklist"]["answers"]
    for item in answers:
        answers[item] = "yes" if item in yes else "no"
    body["victim_history"]["prior_da_incidents_12m"] = 0
    body["relationship"]["separation"] = {"status": "none"}
    body["circumstances"]["strangulation"] = False
    # Rules v2 count the officer's observations and the victim's own view too.
    body["circumstances"]["injury_to_victim"] = False
    body["officer_assessment"]["victim_perception"] = None
    return body


# 16 "yes" of 24 → high (visible high risk), no children.
HIGH_ANSWERS = (
    "current_injury",
    "very_frightened",
    "afraid_of_further_harm",
    "isolated",
    "depressed_or_suicidal",
    "abuse_more_often",
    "financial_issues",
    "substance_or_mental_health",
    "criminal_history",
    "harmed_others",
    "animal_abuse",
    "sexual_abuse",
    "other_person_threat",
    "breach_of_bail_or_order",
    "controlling_or_jealous",
    "abuse_getting_worse",
)


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


def queue(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 200, **params}
        if cursor:
            query["cursor"] = cursor
        r = client.get("/v1/queue", params=query, headers=headers)
        assert r.status_code == 200, r.text
        rows += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if not cursor:
            return rows


def test_queue_orders_by_highest_risk_then_the_earliest_due_open_flag(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    later_severe = post_incident(client, submitter, incident_at("2030-03-05T10:00:00Z"))
    earlier_severe = post_incident(client, submitter, incident_at("2030-03-04T10:00:00Z"))
    high = post_incident(client, submitter, victim_only("2030-03-01T10:00:00Z", yes=HIGH_ANSWERS))
    medium = post_incident(
        client, submitter, victim_only("2030-02-01T10:00:00Z", yes=("strangulation",))
    )
    standard = post_incident(client, submitter, victim_only("2030-01-01T10:00:00Z"))

    rows = queue(client, triage)
    assert [r["incident_id"] for r in rows] == [
        earlier_severe,  # a severe child (rank 3), due first
        later_severe,
        high,  # victim high, no children (rank 2)
        medium,  # a red flag makes the victim medium (rank 1)
        standard,  # standard, but a serial perpetrator still raises flags (rank 0)
    ]
    assert [(r["risk_rank"], r["victim_level"], r["highest_child_level"]) for r in rows] == [
        (3, "high", "severe"),
        (3, "high", "severe"),
        (2, "high", None),
        (1, "medium", None),
        (0, "standard", None),
    ]
    for row in rows:
        flags = flags_of(client, triage, row["incident_id"])
        assert row["open_flags"] == len(flags)
        assert utc(row["earliest_due_at"]) == min(utc(f["due_at"]) for f in flags)
        assert row["overdue_flags"] == 0
        assert row["area"] == "E09000018"
        assert row["assessment_version"] == 1


def test_queue_row_follows_flag_changes_and_counts_overdue_flags(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    incident_id = post_incident(client, submitter, incident_at("2020-06-01T10:00:00Z"))
    flags = flags_of(client, triage, incident_id)
    [row] = queue(client, triage)
    # Fourteen: in 2020 the child c1 (born 2019) is not of school age, but rules v2 tell
    # the child's recorded setting whatever the age (Operation Encompass).
    assert row["open_flags"] == row["overdue_flags"] == len(flags) == 14

    # Working a flag keeps it open; closing the earliest moves the earliest due time on.
    earliest = min(flags, key=lambda f: (f["due_at"], f["id"]))
    patch_flag(client, triage, earliest, {"status": "acknowledged"})
    assert queue(client, triage)[0]["open_flags"] == 14
    earliest = client.get(f"/v1/flags/{earliest['id']}", headers=triage).json()
    patch_flag(client, triage, earliest, {"status": "done"})
    [row] = queue(client, triage)
    assert row["open_flags"] == row["overdue_flags"] == 13
    remaining = flags_of(client, triage, incident_id)
    assert utc(row["earliest_due_at"]) == min(utc(f["due_at"]) for f in remaining)

    # Every flag closed: the incident leaves the queue.
    for flag in remaining:
        r = patch_flag(client, triage, flag, {"status": "not_required", "status_reason": "test"})
        assert r.status_code == 200
    assert queue(client, triage) == []


def test_a_judgement_that_raises_the_level_moves_the_incident_up_the_queue(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    medium = post_incident(
        client, submitter, victim_only("2030-02-01T10:00:00Z", yes=("strangulation",))
    )
    high = post_incident(client, submitter, victim_only("2030-03-01T10:00:00Z", yes=HIGH_ANSWERS))
    assert [r["incident_id"] for r in queue(client, triage)] == [high, medium]
    r = client.post(
        f"/v1/incidents/{medium}/judgements",
        json={"level": "high", "rationale": "Invented rationale: escalating threats."},
        headers=triage,
    )
    assert r.status_code == 201, r.text
    rows = queue(client, triage)
    by_id = {row["incident_id"]: row for row in rows}
    assert (by_id[medium]["risk_rank"], by_id[medium]["victim_level"]) == (2, "high")
    assert by_id[medium]["assessment_version"] == 2
    # Same rank now: the earlier due open flag comes first.
    assert [row["incident_id"] for row in rows] == [medium, high]


def test_queue_pages_are_stable_while_new_incidents_arrive(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    existing = {
        post_incident(client, submitter, incident_at(f"2030-04-0{day}T10:00:00Z"))
        for day in range(1, 6)
    }
    first = client.get("/v1/queue", params={"limit": 2}, headers=triage).json()
    seen = [r["incident_id"] for r in first["items"]]
    # A more urgent incident arrives (sorts before the cursor), and a less urgent one.
    post_incident(client, submitter, incident_at("2030-03-01T10:00:00Z"))
    post_incident(client, submitter, victim_only("2030-01-01T10:00:00Z"))
    cursor = first["next_cursor"]
    while cursor:
        page = client.get("/v1/queue", params={"limit": 2, "cursor": cursor}, headers=triage)
        assert page.status_code == 200
        seen += [r["incident_id"] for r in page.json()["items"]]
        cursor = page.json()["next_cursor"]
    assert len(seen) == len(set(seen))
    assert existing <= set(seen)
    bad = client.get("/v1/queue", params={"cursor": "bm90LWEtY3Vyc29y"}, headers=triage)
    assert bad.status_code == 400


def test_queue_is_for_triage_in_its_areas_and_auditors(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker, triage: dict[str, str]
) -> None:
    incident_id = post_incident(client, submitter, incident_at("2030-04-01T10:00:00Z"))
    assert [r["incident_id"] for r in queue(client, triage)] == [incident_id]
    assert queue(client, make_key("triage", areas=[AREA_B])) == []
    assert queue(client, triage, area=AREA_B) == []
    assert [r["incident_id"] for r in queue(client, make_key("auditor"))] == [incident_id]
    both = make_key("triage", areas=["E09000018", AREA_B])
    assert [r["incident_id"] for r in queue(client, both)] == [incident_id]
    assert client.get("/v1/queue", headers=make_key("agency", agency="csc")).status_code == 403
    assert client.get("/v1/queue", headers=submitter).status_code == 403
    no_purpose = {"Authorization": triage["Authorization"]}
    assert client.get("/v1/queue", headers=no_purpose).status_code == 400


def test_an_erased_incident_leaves_the_queue(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker, triage: dict[str, str]
) -> None:
    incident_id = post_incident(client, submitter, incident_at("2030-04-01T10:00:00Z"))
    assert len(queue(client, triage)) == 1
    r = client.post(
        f"/v1/incidents/{incident_id}/erase",
        json={"reason": "Invented: court order"},
        headers=make_key("admin"),
    )
    assert r.status_code == 200, r.text
    assert queue(client, triage) == []
    assert list_flags(client, triage) == []


def test_metrics_gauge_counts_overdue_flags_by_type_and_agency_only(
    fresh_database: Database, make_key_fresh: Any
) -> None:
    settings = Settings(environment="test", database_url=fresh_database.url)
    app = build_app(settings, fresh_database, None)
    submitter = make_key_fresh(fresh_database, "submitter")
    triage = make_key_fresh(fresh_database, "triage")
    with TestClient(app, raise_server_exceptions=False) as client:
        old = post_incident(client, submitter, incident_at("2020-06-01T10:00:00Z"))
        post_incident(client, submitter, incident_at("2030-06-03T10:00:00Z"))  # none due yet

        def gauge() -> dict[tuple[str, str], float]:
            text = client.get("/metrics").text
            assert old not in text
            assert "E09000018" not in text
            counts = {}
            for labels, value in re.findall(r"^triage_flags_overdue\{(.*)\} (\S+)$", text, re.M):
                label = dict(re.findall(r'(\w+)="(\w+)"', labels))
                assert set(label) == {"type", "agency"}
                counts[(label["agency"], label["type"])] = float(value)
            return counts

        counts = gauge()
        assert counts[("csc", "children_social_care_referral")] == 2.0
        assert counts[("health", "strangulation_medical")] == 1.0
        assert counts[("police", "child_not_spoken_to")] == 1.0
        assert sum(counts.values()) == 14.0  # the 2020 incident's flags only

        flag = one_flag(flags_of(client, triage, old), "strangulation_medical")
        assert patch_flag(client, triage, flag, {"status": "done"}).status_code == 200
        counts = gauge()
        assert counts[("health", "strangulation_medical")] == 0.0  # kept, at zero
        assert sum(counts.values()) == 13.0
