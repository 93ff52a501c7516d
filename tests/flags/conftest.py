"""Fixtures for the flag tests.

All test data here is invented: no real person, school or incident. The example incident
follows the contract's `incident.example.json` with names and identifiers left out (the
flags never read them).
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from app.contract.incident import Incident
from app.flags import Calendar, FlagProposal, FlagRuleRegistry, FlagRuleSet, evaluate_flags

# The contract's example incident (Friday 20 November 2026, 22:15 GMT), without names.
EXAMPLE_INCIDENT: dict[str, Any] = {
    "source": {"system": "force-a-records", "reference": "PPN-2026-004211"},
    "area": "E09000018",
    "occurred_at": "2026-11-20T22:15:00Z",
    "reported_at": "2026-11-20T22:31:00Z",
    "persons": [
        {"ref": "v1", "role": "victim", "date_of_birth": "1994-03-02", "sex": "female"},
        {"ref": "p1", "role": "perpetrator", "date_of_birth": "1990-07-19", "sex": "male"},
        {
            "ref": "c1",
            "role": "child",
            "date_of_birth": "2019-05-11",
            "child": {
                "relationship_to_perpetrator": "stepchild",
                "lives_at_address": True,
                "present": True,
                "witnessed": True,
                "injured": False,
                "intervened": True,
                "spoken_to_by_officer": False,
                "school": {"name": "Invented Primary", "urn": "100123"},
                "existing_plan": "none",
                "disability_or_additional_needs": False,
                "account": "Invented account text.",
            },
        },
        {
            "ref": "c2",
            "role": "child",
            "unborn": True,
            "expected_date": "2027-02-01",
            "child": {"relationship_to_perpetrator": "child"},
        },
    ],
    "relationship": {
        "victim": "v1",
        "perpetrator": "p1",
        "type": "ex_intimate_partner",
        "cohabiting": False,
        "separation": {"status": "recent", "date": "2026-09-30"},
    },
    "circumstances": {"physical_violence": True, "strangulation": True, "arrest_made": True},
    "victim_checklist": {
        "instrument": "dash-ric",
        "answers": {
            "current_injury": "yes",
            "very_frightened": "yes",
            "afraid_of_further_harm": "yes",
            "isolated": "no",
            "depressed_or_suicidal": "unknown",
            "separation_past_year": "yes",
            "child_contact_conflict": "yes",
            "stalking_harassment": "yes",
            "pregnant_or_recent_birth": "yes",
            "abuse_more_often": "yes",
            "abuse_getting_worse": "yes",
            "controlling_or_jealous": "yes",
            "weapons_used": "no",
            "threat_to_kill": "yes",
            "strangulation": "yes",
            "sexual_abuse": "no",
            "other_person_threat": "no",
            "harmed_others": "unknown",
            "animal_abuse": "no",
            "financial_issues": "yes",
            "substance_or_mental_health": "yes",
            "perpetrator_suicidal": "no",
            "breach_of_bail_or_order": "no",
            "criminal_history": "yes",
        },
    },
    "perpetrator_history": {
        "prior_da_incidents_total": 4,
        "prior_da_victims": 1,
        "prior_non_da_violence": True,
        "prior_custody": False,
        "breach_of_conditional_release": False,
        "warning_markers": ["violence"],
        "active_orders": [],
    },
    "victim_history": {"prior_da_incidents_12m": 2, "last_marac_referral": None},
    "safety_plan": {"written_agreement_with_victim": False},
}

# The assessment the contract's default scoring gives the example, worked out by hand:
# 15 "yes" of 24 → high (visible_high_risk); 2 prior incidents in 12 months + this one →
# potential_escalation; c1 present, victim high and strangulation → severe; c2 unborn,
# victim high → serious, one level up for unborn → severe; one prior victim → serial.
EXAMPLE_ASSESSMENT: dict[str, Any] = {
    "victim": {
        "person_ref": "v1",
        "level": "high",
        "score": 15,
        "max_score": 24,
        "unknown_count": 2,
        "items": [{"id": "strangulation", "answer": "yes", "points": 1, "label": "Strangled"}],
        "triggers": [
            {"rule": "red_flag", "effect": "high", "detail": "…", "fired": True},
            {"rule": "visible_high_risk", "effect": "high", "detail": "15 of 24 ≥ 14"},
            {"rule": "potential_escalation", "effect": "high", "detail": "3 in 12 months"},
            {"rule": "repeat_marac", "effect": "high", "detail": "none", "fired": False},
        ],
        "marac": {"refer": True, "criteria": ["visible_high_risk", "potential_escalation"]},
    },
    "children": [
        {
            "person_ref": "c1",
            "level": "severe",
            "recommended_response": "strategy_discussion",
            "age_years": 7,
            "triggers": [],
            "items": [],
        },
        {
            "person_ref": "c2",
            "level": "severe",
            "recommended_response": "strategy_discussion",
            "age_years": None,
            "triggers": [],
            "items": [],
        },
    ],
    "perpetrator": {"person_ref": "p1", "markers": ["prior_da"], "serial": True},
    "classifier": None,
    "summary": "Invented summary.",
}


class Case:
    """A quiet incident (no children, standard risk: no flags) to change one fact at a time.

    Tuesday 17 November 2026, 10:00 GMT.
    """

    def __init__(self) -> None:
        self.incident: dict[str, Any] = {
            "source": {"system": "test", "reference": "T-1"},
            "area": "E09000018",
            "occurred_at": "2026-11-17T09:40:00Z",
            "reported_at": "2026-11-17T10:00:00Z",
            "persons": [
                {"ref": "v1", "role": "victim"},
                {"ref": "p1", "role": "perpetrator"},
            ],
            "relationship": {"victim": "v1", "perpetrator": "p1"},
            "victim_checklist": {"answers": {}},
        }
        self.assessment: dict[str, Any] = {
            "victim": {
                "person_ref": "v1",
                "level": "standard",
                "score": 0,
                "max_score": 24,
                "unknown_count": 24,
                "items": [],
                "triggers": [],
                "marac": {"refer": False, "criteria": []},
            },
            "children": [],
            "perpetrator": {"person_ref": "p1", "markers": [], "serial": False},
            "classifier": None,
            "summary": "",
        }

    def victim(
        self, level: str, *, marac: list[str] | None = None, triggers: tuple[str, ...] = ()
    ) -> Case:
        victim = self.assessment["victim"]
        victim["level"] = level
        victim["marac"] = {"refer": bool(marac), "criteria": list(marac or [])}
        victim["triggers"] = [{"rule": t, "effect": level, "detail": ""} for t in triggers]
        return self

    def child(
        self,
        ref: str,
        *,
        level: str = "moderate",
        date_of_birth: str | None = "2017-03-01",
        unborn: bool = False,
        **details: Any,
    ) -> Case:
        person: dict[str, Any] = {"ref": ref, "role": "child", "child": details}
        if unborn:
            person["unborn"] = True
        elif date_of_birth is not None:
            person["date_of_birth"] = date_of_birth
        self.incident["persons"].append(person)
        self.assessment["children"].append({"person_ref": ref, "level": level})
        return self

    def answers(self, **answers: str) -> Case:
        self.incident["victim_checklist"]["answers"].update(answers)
        return self

    def set(self, path: str, value: Any) -> Case:
        """Set an incident field by dotted path, creating objects on the way."""
        target = self.incident
        *parents, leaf = path.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[leaf] = value
        return self

    def serial(self, serial: bool = True) -> Case:
        self.assessment["perpetrator"]["serial"] = serial
        return self

    def classifier(self, *, elevated: bool, band: str = "elevated") -> Case:
        self.assessment["classifier"] = {"probability": 0.7, "band": band, "elevated": elevated}
        return self

    def build(self) -> Incident:
        return Incident.model_validate(self.incident)

    def flags(self, rules: FlagRuleSet, calendar: Calendar | None = None) -> list[FlagProposal]:
        return evaluate_flags(self.build(), self.assessment, rules, calendar or Calendar())

    def raised(self, rules: FlagRuleSet, flag_type: str) -> list[FlagProposal]:
        return [f for f in self.flags(rules) if f.type == flag_type]


@pytest.fixture(scope="session")
def registry() -> FlagRuleRegistry:
    return FlagRuleRegistry.from_directory()


@pytest.fixture(scope="session")
def default_rules(registry: FlagRuleRegistry) -> FlagRuleSet:
    return registry.get("default-flags@1")


@pytest.fixture
def case() -> Case:
    return Case()


@pytest.fixture(scope="session")
def case_class() -> type[Case]:
    """The `Case` builder itself, for property tests that build many cases."""
    return Case


@pytest.fixture
def example_incident_data() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE_INCIDENT)


@pytest.fixture
def example_incident() -> Incident:
    return Incident.model_validate(copy.deepcopy(EXAMPLE_INCIDENT))


@pytest.fixture
def example_assessment() -> dict[str, Any]:
    return copy.deepcopy(EXAMPLE_ASSESSMENT)
