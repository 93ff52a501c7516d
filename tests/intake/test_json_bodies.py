"""The intake's result and pages of flags are built as JSON directly, not through their
pydantic models (validating the engine's own output again cost more than scoring it).
These tests hold the direct builders to exactly what the contract's models would dump,
field order included, for generated incidents (invented data) and through the API.
"""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from app.assessments.pipeline import ClassifierPolicy, evaluate
from app.assessments.schemas import AssessmentOut
from app.assessments.service import assessment_body, assessment_json
from app.classifier.artifact import load_artifact
from app.config import Settings
from app.flags import Calendar, FlagRuleRegistry, evaluate_flags
from app.flags.api_schemas import FlagPage
from app.flags.schemas import FlagOut, flag_json
from app.flags.store import child_school_urns, flag_from_proposal
from app.intake.responses import IntakeResponse
from app.responses import json_datetime
from app.scoring import History
from tests.scoring.test_scoring_properties import PROPERTY_SETTINGS, scenario

DEMO_MODEL = load_artifact(Path(__file__).resolve().parents[2] / "models" / "demo-synthetic" / "1")
POLICIES = (
    ClassifierPolicy(model=None, threshold=None, may_raise_level=False),
    ClassifierPolicy(model=DEMO_MODEL, threshold=None, may_raise_level=False),
    ClassifierPolicy(model=DEMO_MODEL, threshold=0.3, may_raise_level=True),
)
RULES = FlagRuleRegistry.from_directory()
CALENDAR = Calendar.from_iso_dates([], [])

utc_times = st.datetimes(
    min_value=dt.datetime(2020, 1, 1), max_value=dt.datetime(2026, 11, 1), timezones=st.just(dt.UTC)
)


def same_json(built: Any, dumped: Any) -> None:
    """Equal, and every object's keys in the same order."""
    assert built == dumped
    if isinstance(built, dict):
        assert list(built) == list(dumped)
        for key in built:
            same_json(built[key], dumped[key])
    elif isinstance(built, list):
        for a, b in zip(built, dumped, strict=True):
            same_json(a, b)


@PROPERTY_SETTINGS
@given(case=scenario(), policy=st.sampled_from(POLICIES), created_at=utc_times, data=st.data())
def test_the_assessment_and_its_flags_are_what_the_models_dump(
    case: Any, policy: ClassifierPolicy, created_at: dt.datetime, data: st.DataObject
) -> None:
    incident, judgements, definitions = case
    result = evaluate(incident, History.reported(incident), definitions, judgements, policy)
    rules = RULES.get(Settings().flag_rules)
    result["flag_rules"] = {"id": rules.id, "version": rules.version, "sha256": rules.sha256}
    assessment_id = uuid.uuid4()
    same_json(
        assessment_json(result, assessment_id, 3, created_at),
        assessment_body(result, assessment_id, 3, created_at).model_dump(mode="json"),
    )

    now = data.draw(utc_times)
    schools = child_school_urns(incident)
    for proposal in evaluate_flags(incident, result, rules, CALENDAR):
        flag = flag_from_proposal(
            proposal,
            incident_id=uuid.uuid4(),
            assessment_id=assessment_id,
            area=incident.area,
            subject_person_id=None,
            school_urn=schools.get(proposal.subject_ref),
            now=created_at,
        )
        flag.status = data.draw(st.sampled_from(["open", "in_progress", "done"]))
        same_json(flag_json(flag, now), FlagOut.of(flag, now).model_dump(mode="json"))


def test_json_datetime_is_pydantics() -> None:
    for value in (
        dt.datetime(2026, 11, 20, 22, 15, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 20, 22, 15, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 6, 1, 9, 30, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    ):
        assert (
            json_datetime(value)
            == FlagPage(items=[], next_cursor=None, as_of=value).model_dump(mode="json")["as_of"]
        )


def test_the_intake_body_and_a_page_of_flags_are_what_the_models_dump(
    client: TestClient, submitter: dict[str, str], make_key: Any, incident: dict[str, Any]
) -> None:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    body = created.json()
    assert len(body["flags"]) > 5
    same_json(body, IntakeResponse.model_validate(body).model_dump(mode="json"))

    triage = make_key("triage")
    page = client.get("/v1/flags", headers=triage)
    assert page.status_code == 200, page.text
    assert page.json()["items"]
    same_json(page.json(), FlagPage.model_validate(page.json()).model_dump(mode="json"))
    # The page's flags are the intake's (its own representation of the same rows).
    assert {f["id"] for f in page.json()["items"]} <= {f["id"] for f in body["flags"]}
    assert AssessmentOut.model_validate(body["assessment"]).id == body["assessment"]["id"]
