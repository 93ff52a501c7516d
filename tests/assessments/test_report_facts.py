"""Every assessment keeps the facts the area report counts in columns of its own
(app/assessments/facts.py), and they say what its JSON says: as intake writes them, and as
the migration that added them fills them for assessments stored before it. On both
databases; the incidents are invented test data (tests/data/README.md).
"""

from __future__ import annotations

import uuid
from typing import Any

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessments.facts import (
    REPORT_FACT_COLUMNS,
    RESULT_FACT_COLUMNS,
    report_facts,
    result_facts,
)
from app.assessments.models import Assessment
from app.config import Settings
from app.db import Database
from app.ops.migrations import alembic_config
from tests.conftest import KeyMaker, build_app
from tests.flags.api_helpers import incident_at

BEFORE_REPORT_FACTS = "8e2f4a6c1b37"
CHILD_LEVELS = ("moderate", "moderate_to_serious", "serious", "severe")


def _varied(n: int) -> dict[str, Any]:
    """The example incident varied in every fact the report counts."""
    body = incident_at(f"2026-10-{1 + n:02d}T21:00:00Z")
    c1 = next(p for p in body["persons"] if p["ref"] == "c1")
    c1["child"].update(
        present=n % 2 == 0,
        witnessed=n % 3 == 0,
        injured=n % 4 == 1,
        intervened=n % 5 == 0,
        spoken_to_by_officer=n % 3 == 1,
    )
    if n % 3 == 2:  # one child only
        body["persons"] = [p for p in body["persons"] if p["ref"] != "c2"]
    elif n % 3 == 1:  # the second child's facts recorded too
        c2 = next(p for p in body["persons"] if p["ref"] == "c2")
        c2["child"].update(present=True, spoken_to_by_officer=False)
    if n == 5:  # no children at all
        body["persons"] = [p for p in body["persons"] if p["role"] != "child"]
    status = ("none", "recent", "planned", "perceived", "historic")[n % 5]
    body["relationship"]["separation"] = {"status": status}
    answers = body["victim_checklist"]["answers"]
    answers["separation_past_year"] = ("yes", "no", "unknown")[n % 3]
    if n % 4 == 0:
        body["victim_history"]["last_marac_referral"] = "2026-06-01"
    if n % 2 == 1:
        body["perpetrator_history"]["prior_da_victims"] = 0
    return body


def _from_json(inputs: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """The facts read from the JSON the way the report read them before they were columns."""

    def yes(value: object) -> bool:
        return value is True or value == "yes"

    incident = inputs["incident"]
    children = [p.get("child") or {} for p in incident["persons"] if p["role"] == "child"]
    levels = [c["level"] for c in result["children"]]
    separation = incident["relationship"]["separation"]["status"]
    out: dict[str, Any] = {
        "marac_repeat": "repeat_marac" in result["victim"]["marac"]["criteria"],
        "serial_perpetrator": result["perpetrator"]["serial"] is True,
        **{f"children_{level}": levels.count(level) for level in CHILD_LEVELS},
        **{
            f"children_{fact}": sum(yes(c.get(fact)) for c in children)
            for fact in ("present", "witnessed", "injured", "intervened")
        },
        "children_not_spoken_to": sum(
            (yes(c.get("present")) or yes(c.get("witnessed")))
            and c.get("spoken_to_by_officer") in (False, "no")
            for c in children
        ),
        "separation_related": separation in ("recent", "planned", "perceived")
        or yes(incident["victim_checklist"]["answers"].get("separation_past_year")),
    }
    return out


def _stored(
    session: Session, names: tuple[str, ...] = REPORT_FACT_COLUMNS
) -> dict[uuid.UUID, dict[str, Any]]:
    columns = [getattr(Assessment, name) for name in names]
    return {
        row[0]: dict(zip(names, row[1:], strict=True))
        for row in session.execute(select(Assessment.id, *columns))
    }


def _result_facts_from_json(result: dict[str, Any]) -> dict[str, Any]:
    stages = [t["stage"] for t in result["victim"]["triggers"]]
    return {
        "engine_version": result["engine_version"],
        "classifier_raised": "classifier" in stages,
        "victim_score": result["victim"]["score"],
    }


def _json(session: Session) -> dict[uuid.UUID, tuple[Any, Any]]:
    rows = session.execute(select(Assessment.id, Assessment.inputs, Assessment.result))
    return {aid: (inputs, result) for aid, inputs, result in rows}


def _assert_varied(facts: list[dict[str, Any]]) -> None:
    """Every column but the children's levels takes more than one value over the seeded
    incidents (else the comparison proves little), and children are found at two levels."""
    levels = [f"children_{level}" for level in CHILD_LEVELS]
    for name in REPORT_FACT_COLUMNS:
        if name not in levels:
            assert len({f[name] for f in facts}) > 1, name
    assert sum(any(f[name] for f in facts) for name in levels) >= 2


def test_intake_stores_the_facts_its_json_says(
    client: TestClient, make_key: KeyMaker, session: Session
) -> None:
    submitter = make_key("submitter")
    for n in range(12):
        r = client.post("/v1/incidents", json=_varied(n), headers=submitter)
        assert r.status_code == 201, r.text
    stored = _stored(session)
    documents = _json(session)
    assert len(stored) >= 12
    for aid, facts in stored.items():
        inputs, result = documents[aid]
        assert facts == _from_json(inputs, result), aid
        assert facts == report_facts(inputs, result)
    for aid, facts in _stored(session, RESULT_FACT_COLUMNS).items():
        result = documents[aid][1]
        assert facts == _result_facts_from_json(result) == result_facts(result), aid
        assert facts["engine_version"] == "1"
        assert facts["classifier_raised"] is False
    _assert_varied(list(stored.values()))


def test_report_facts_of_erased_content_are_none() -> None:
    assert report_facts(None, None) == dict.fromkeys(REPORT_FACT_COLUMNS)
    assert result_facts(None) == dict.fromkeys(RESULT_FACT_COLUMNS)


def test_a_classifier_trigger_is_found() -> None:
    result = {"engine_version": "1", "victim": {"triggers": [{"stage": "classifier"}]}}
    assert result_facts(result) == {
        "engine_version": "1",
        "classifier_raised": True,
        "victim_score": None,
    }


def test_the_migration_fills_the_same_facts_for_assessments_already_stored(
    fresh_database: Database, make_key_fresh: Any
) -> None:
    database = Database(fresh_database.url)
    app = build_app(Settings(environment="test", database_url=fresh_database.url), database, None)
    submitter = make_key_fresh(database)
    admin = make_key_fresh(database, "admin")
    with TestClient(app) as client:
        ids, bodies = [], [_varied(n) for n in range(12)]
        for body in bodies:
            r = client.post("/v1/incidents", json=body, headers=submitter)
            assert r.status_code == 201, r.text
            ids.append(r.json()["incident_id"])
        # A revision (a second version of the first incident, its facts changed).
        revised = _varied(7)
        revised["source"]["reference"] = bodies[0]["source"]["reference"]
        r = client.post(f"/v1/incidents/{ids[0]}/revisions", json=revised, headers=submitter)
        assert r.status_code in (200, 201), r.text
        r = client.post(
            f"/v1/incidents/{ids[1]}/erase", json={"reason": "test: disposal"}, headers=admin
        )
        assert r.status_code == 200, r.text
    database.dispose()
    with fresh_database.session() as s:
        written = _stored(s)
        written_result_facts = _stored(s, RESULT_FACT_COLUMNS)
        erased = set(
            s.scalars(select(Assessment.id).where(Assessment.incident_id == uuid.UUID(ids[1])))
        )
    assert erased
    assert all(written[a] == dict.fromkeys(REPORT_FACT_COLUMNS) for a in erased)
    _assert_varied([f for a, f in written.items() if a not in erased])

    config = alembic_config(fresh_database.url)
    fresh_database.dispose()
    command.downgrade(config, BEFORE_REPORT_FACTS)
    command.upgrade(config, "head")

    with fresh_database.session() as s:
        assert _stored(s) == written
        assert _stored(s, RESULT_FACT_COLUMNS) == written_result_facts
