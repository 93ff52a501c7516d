"""Plausibility checks apply to what comes in, never to stored inputs read again.

An incident stored before the checks existed (a date of birth typed in the future, a
time in year 2500 on SQLite, a blank name, a count sent as "3") must still load for
reproduction, a later judgement, patterns and training. Invented test data.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from app.contract.bounds import _INTAKE_ONLY, STORED, stored_validator
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


STORED_INCIDENT = stored_validator(Incident)
# JSON values a stored field might hold, plausible or not, typed right or not: pydantic's
# lax conversions, times and dates in and out of range, blanks, numbers as text.
ODD_VALUES: list[Any] = [
    True, False, None, 0, 1, 2, -1, 0.0, 1.0, 1.5, -0.0, 3, 3.0, 10_001, 2**63, 1e300,
    "", " ", "3", "3.0", "-1", "true", "false", "True", "yes", "no", "on", "off", "1", "0",
    "t", "f", "y", "n", "none", "high", "dash-police", "v1", "nobody", "x" * 201,
    "2024-01-02", "2024-01-02T03:04:05Z", "2024-01-02T03:04:05", "2024-01-02T00:00:00+01:00",
    "2999-01-01", "2500-01-01T00:00:00Z", "1899-12-31", "0001-01-01", "2024-02-30",
    1_700_000_000, 1_700_000_000.5, 86_400, 19_723, [], [True], {}, {"yes": "no"},
]  # fmt: skip


def _leaves(value: Any, path: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _leaves(item, (*path, key))
    elif isinstance(value, list) and value:
        for index, item in enumerate(value):
            yield from _leaves(item, (*path, index))
    else:
        yield path


def _replaced(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> dict[str, Any]:
    copied: dict[str, Any] = json.loads(json.dumps(data))
    target: Any = copied
    for key in path[:-1]:
        target = target[key]
    target[path[-1]] = value
    return copied


def _loaded(load: Any, text: str) -> str | None:
    """What loads, as the exact repr of the model and its dump (True is not 1), or None."""
    try:
        model = load(text)
    except ValidationError:
        return None
    assert type(model) is Incident
    return repr(model) + repr(model.model_dump())


def test_the_stored_validator_loads_exactly_what_loading_as_stored_loads() -> None:
    """``stored_validator`` leaves intake's checks out: every field of a stored incident
    (the example as stored, every field written out) with every odd value in turn loads
    the same model, or fails, as ``STORED`` loading does; so does the implausible one."""

    def same(text: str) -> bool:
        expected = _loaded(lambda t: Incident.model_validate_json(t, context=STORED), text)
        got = _loaded(lambda t: STORED_INCIDENT.validate_json(t, context=STORED), text)
        assert got == expected, text
        return expected is not None

    assert same(json.dumps(implausible()))
    full = Incident.model_validate(example_incident()).model_dump(mode="json")
    loaded = sum(
        same(json.dumps(_replaced(full, path, value)))
        for path in _leaves(full)
        for value in ODD_VALUES
    )
    assert loaded > 1000  # many load, so this compares models, not only refusals


def test_the_stored_validator_calls_none_of_the_intake_checks() -> None:
    shown = repr(STORED_INCIDENT)
    for check in ("_yes_no", "_iso_text", "_whole_number", "_not_blank", "_within_years"):
        assert check not in shown
    assert "_yes_no" in repr(Incident.__pydantic_validator__)
    # The rules that make it an incident at all stay, and the models stay complete.
    assert "_persons_consistent" in shown
    assert Incident.__pydantic_complete__ is True


class _AsStored:
    context = STORED


@pytest.mark.parametrize("value", [None, "", "  ", "3", 3.5, True, dt.date(2999, 1, 1), []])
def test_every_intake_only_check_passes_a_stored_value_through_unchanged(value: Any) -> None:
    """What lets ``stored_validator`` leave them out."""
    assert len(_INTAKE_ONLY) >= 5
    for check in _INTAKE_ONLY.values():
        assert callable(check)
        assert check(value, _AsStored()) is value
