"""Builders for test incidents. All test data here is invented: the people, references and
histories are fictional, and `data/incident.example.json` is a copy of the contract's
example (itself invented)."""

from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from app.contract.incident import Incident
from app.contract.items import INSTRUMENT_ITEMS

DATA = Path(__file__).parent / "data"
EXAMPLE = json.loads((DATA / "incident.example.json").read_text(encoding="utf-8"))

# Items that are neither critical nor aggravating in the shipped red-flag rule, so that a
# score can be built up without any red flag firing.
PLAIN_ITEMS_RIC: tuple[str, ...] = (
    "current_injury",
    "very_frightened",
    "afraid_of_further_harm",
    "isolated",
    "depressed_or_suicidal",
    "abuse_more_often",
    "sexual_abuse",
    "other_person_threat",
    "harmed_others",
    "animal_abuse",
    "financial_issues",
    "substance_or_mental_health",
    "breach_of_bail_or_order",
    "criminal_history",
)
PLAIN_ITEMS_POLICE = (
    *PLAIN_ITEMS_RIC,
    "children_not_perpetrators",
    "harmed_children",
    "threatened_children",
)
CRITICAL = ("strangulation", "threat_to_kill", "weapons_used")
AGGRAVATING = (
    "separation_past_year",
    "stalking_harassment",
    "pregnant_or_recent_birth",
    "perpetrator_suicidal",
    "child_contact_conflict",
    "controlling_or_jealous",
    "abuse_getting_worse",
)
# 20 November 2026, 22:15 in London (GMT): the contract example's time.
OCCURRED_AT = "2026-11-20T22:15:00Z"


def example_incident_dict() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE)


def answers(
    instrument: str = "dash-ric",
    *,
    yes: Iterable[str] = (),
    unknown: Iterable[str] = (),
    not_asked: Iterable[str] = (),
    omit: Iterable[str] = (),
) -> dict[str, str]:
    """Every item answered `no` except those listed (``omit``: left out altogether)."""
    result = dict.fromkeys(INSTRUMENT_ITEMS[instrument], "no")
    for item in yes:
        result[item] = "yes"
    for item in unknown:
        result[item] = "unknown"
    for item in not_asked:
        result[item] = "not_asked"
    for item in omit:
        del result[item]
    return result


def child(
    ref: str = "c1",
    *,
    date_of_birth: str | None = "2014-01-10",
    unborn: bool = False,
    **facts: Any,
) -> dict[str, Any]:
    """A child aged 12 at the default incident date, with only the given facts recorded."""
    person: dict[str, Any] = {"ref": ref, "role": "child"}
    if unborn:
        person["unborn"] = True
        person["expected_date"] = "2027-03-01"
    elif date_of_birth is not None:
        person["date_of_birth"] = date_of_birth
    if facts:
        person["child"] = facts
    return person


def incident_dict(
    *,
    instrument: str = "dash-ric",
    yes: Iterable[str] = (),
    unknown: Iterable[str] = (),
    answer_map: Mapping[str, str] | None = None,
    children: Iterable[Mapping[str, Any]] = (),
    occurred_at: str = OCCURRED_AT,
    victim_history: Mapping[str, Any] | None = None,
    perpetrator_history: Mapping[str, Any] | None = None,
    officer: Mapping[str, Any] | None = None,
    circumstances: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A minimal valid incident: victim v1, perpetrator p1, the given children and answers."""
    return {
        "source": {"system": "test-system", "reference": "T-1", "submitted_by": "officer-1"},
        "area": "E09000018",
        "occurred_at": occurred_at,
        "persons": [
            {"ref": "v1", "role": "victim", "date_of_birth": "1990-01-01"},
            {"ref": "p1", "role": "perpetrator"},
            *children,
        ],
        "relationship": {"victim": "v1", "perpetrator": "p1"},
        "circumstances": dict(circumstances or {}),
        "victim_checklist": {
            "instrument": instrument,
            "answers": dict(answer_map)
            if answer_map is not None
            else answers(instrument, yes=yes, unknown=unknown),
        },
        "victim_history": dict(victim_history or {}),
        "perpetrator_history": dict(perpetrator_history or {}),
        "officer_assessment": dict(officer or {}),
    }


def make_incident(**kwargs: Any) -> Incident:
    return Incident.model_validate(incident_dict(**kwargs))


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text)
