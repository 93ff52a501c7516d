"""Plausibility checks apply to what comes in, never to stored inputs read again.

An incident stored before the checks existed (a date of birth typed in the future, a
time in year 2500 on SQLite, a blank name, a count sent as "3") must still load for
reproduction, a later judgement, patterns and training. Invented test data.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.contract.incident import Incident, stored_incident
from tests.conftest import example_incident

APP = Path(__file__).resolve().parents[1] / "app"


def implausible() -> dict[str, Any]:
    data = example_incident()
    data["persons"][2]["date_of_birth"] = "2999-01-01"
    data["persons"][0]["name"]["family"] = "   "
    data["occurred_at"] = "2500-01-01T00:00:00Z"
    data["reported_at"] = "2500-01-01T01:00:00Z"
    data["perpetrator_history"]["prior_da_incidents_total"] = "3"
    data["circumstances"]["physical_violence"] = "true"
    return data


def test_intake_refuses_what_a_stored_incident_may_hold() -> None:
    with pytest.raises(ValidationError) as refused:
        Incident.model_validate(implausible())
    locations = {tuple(e["loc"]) for e in refused.value.errors()}
    assert ("occurred_at",) in locations
    assert ("persons", 2, "date_of_birth") in locations
    assert ("persons", 0, "name", "family") in locations
    assert ("perpetrator_history", "prior_da_incidents_total") in locations
    assert ("circumstances", "physical_violence") in locations


def test_a_stored_incident_loads_as_it_was_accepted() -> None:
    incident = stored_incident(implausible())
    assert incident.persons[2].date_of_birth is not None
    assert incident.persons[2].date_of_birth.year == 2999
    assert incident.occurred_at.year == 2500
    assert incident.perpetrator_history.prior_da_incidents_total == 3
    assert incident.circumstances.physical_violence is True
    # The rules that made it an incident at all still hold.
    broken = implausible()
    broken["relationship"]["victim"] = "nobody"
    with pytest.raises(ValidationError):
        stored_incident(broken)


def test_stored_inputs_are_only_ever_read_through_stored_incident() -> None:
    calls = [
        f"{path.relative_to(APP)}:{n}"
        for path in APP.rglob("*.py")
        if path.parent.name != "contract"
        for n, line in enumerate(path.read_text("utf-8").splitlines(), 1)
        if re.search(r"\bIncident(Revision)?\.model_validate\(", line)
    ]
    assert not calls, calls
