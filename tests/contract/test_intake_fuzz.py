"""A fuzz target for the intake body: incidents generated from the published JSON Schema
(valid and invalid), run in process for a bounded number of examples on both databases.
Every answer is a 201 or 200 that matches its schema, or a 4xx problem document; never a
server error, and a refused body writes nothing.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
)
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.contract.items import INSTRUMENT_ITEMS
from app.db import Database
from app.incidents import models
from tests.conftest import KeyMaker

EXAMPLES = 100  # per generation mode: a bounded run that keeps the suite fast (150 took 40-58 s)
PROBLEM = "application/problem+json"
STATUSES: list[int] = []


@pytest.fixture
def settings(migrated_database: Database) -> Settings:
    # No write rate limit: after 120 writes every answer would be a 429.
    return Settings(environment="test", database_url=migrated_database.url, write_rate_per_minute=0)


def repaired(body: Any) -> Any:
    """A generated body made to keep the rules JSON Schema cannot state (refs that agree,
    one victim and one perpetrator, child details on children only, no future birth, item
    ids of the instrument, the submitter's own system), so that it reaches the engine, the
    flags and the linking rather than stopping at validation. Other values stay as drawn."""
    if not isinstance(body, dict) or not isinstance(body.get("persons"), list):
        return body
    persons = body["persons"]
    if len(persons) < 2 or not all(isinstance(p, dict) for p in persons):
        return body
    today = dt.date.today().isoformat()
    for i, person in enumerate(persons):
        person["ref"] = f"r{i}"
        if i < 2:
            person["role"] = ("victim", "perpetrator")[i]
        elif person.get("role") in ("victim", "perpetrator"):
            person["role"] = "other_adult"
        if person.get("role") != "child":
            for key in ("child", "unborn", "expected_date"):
                person.pop(key, None)
        elif person.get("unborn"):
            person.pop("date_of_birth", None)
            person["expected_date"] = today
        else:
            person.pop("expected_date", None)
        if str(person.get("date_of_birth") or "") > today:
            person["date_of_birth"] = "2000-01-01"
    if isinstance(body.get("relationship"), dict):
        body["relationship"].update(victim="r0", perpetrator="r1")
    if isinstance(body.get("source"), dict):
        body["source"]["system"] = "force-a-records"
    body.pop("reported_at", None)
    officer = body.get("officer_assessment")
    if isinstance(officer, dict) and officer.get("professional_judgement"):
        officer["rationale"] = "Invented: seen by the officer."
    history = body.get("victim_history")
    if isinstance(history, dict) and str(history.get("last_marac_referral") or "") > today:
        history.pop("last_marac_referral")
    checklist = body.get("victim_checklist")
    if isinstance(checklist, dict):
        known = set(INSTRUMENT_ITEMS[checklist.get("instrument", "dash-ric")])
        for part in ("answers", "comments"):
            if isinstance(checklist.get(part), dict):
                checklist[part] = {k: v for k, v in checklist[part].items() if k in known}
    return body


def incidents(session: Session) -> int:
    return session.scalar(select(func.count()).select_from(models.Incident)) or 0


def test_no_generated_incident_body_makes_a_server_error(
    app: FastAPI, make_key: KeyMaker, session: Session
) -> None:
    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    intake = schema["/v1/incidents"]["POST"]
    headers = make_key("submitter")
    modes = st.sampled_from([GenerationMode.POSITIVE, GenerationMode.NEGATIVE])

    @given(data=st.data())
    @hypothesis_settings(
        max_examples=EXAMPLES * 2,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    def exercise(data: Any) -> None:
        mode = data.draw(modes)
        case = data.draw(intake.as_strategy(generation_mode=mode))
        if mode is GenerationMode.POSITIVE:
            case.body = repaired(case.body)
        before = incidents(session)
        response = case.call_and_validate(
            headers=headers,
            checks=[not_a_server_error, response_schema_conformance, content_type_conformance],
        )
        STATUSES.append(response.status_code)
        if response.status_code >= 400:
            assert 400 <= response.status_code < 500
            assert response.headers["content-type"] == [PROBLEM]
            assert incidents(session) == before

    exercise()
    # Both kinds of answer were reached: some bodies stored, many refused.
    assert any(s < 300 for s in STATUSES), sorted(set(STATUSES))
    assert any(400 <= s < 500 for s in STATUSES)
