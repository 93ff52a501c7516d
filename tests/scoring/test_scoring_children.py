"""Child scoring, hand-worked against docs/contract.md "Scoring defaults" (children).

The incident date is 20 November 2026 unless a test says otherwise. The default child is
aged 12 (no age step) with nothing recorded, so each rule can be seen alone. Test data
invented.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import pytest

from app.scoring import Assessment, DefinitionSet, History, assess
from app.scoring.results import ChildAssessment
from tests.scoring.factories import PLAIN_ITEMS_RIC, child, make_incident


def assess_child(
    definitions: DefinitionSet,
    person: Mapping[str, Any],
    *,
    yes: Iterable[str] = (),
    instrument: str = "dash-ric",
    **incident: Any,
) -> tuple[ChildAssessment, Assessment]:
    built = make_incident(instrument=instrument, yes=yes, children=[person], **incident)
    result = assess(built, History.reported(built), definitions)
    return result.children[0], result


def fired_rules(assessment: ChildAssessment) -> set[str]:
    return {t.rule for t in assessment.triggers if t.fired and t.stage == "rule"}


def test_a_child_with_nothing_recorded_stays_moderate(definitions: DefinitionSet) -> None:
    assessed, _ = assess_child(definitions, child())
    assert assessed.level == "moderate"
    assert assessed.recommended_response == "universal_support"
    assert fired_rules(assessed) == set()
    assert assessed.age_years == 12


# Each rule alone; the victim stays standard unless the rule is about the victim.
@pytest.mark.parametrize(
    ("facts", "yes", "instrument", "expected_rule", "expected_level"),
    [
        ({"present": True}, (), "dash-ric", "present_or_witnessed", "moderate_to_serious"),
        ({"witnessed": True}, (), "dash-ric", "present_or_witnessed", "moderate_to_serious"),
        ({}, PLAIN_ITEMS_RIC[:10], "dash-ric", "victim_medium", "moderate_to_serious"),
        (
            {},
            ("child_contact_conflict",),
            "dash-ric",
            "child_contact_conflict",
            "moderate_to_serious",
        ),
        (
            {},
            ("substance_or_mental_health",),
            "dash-ric",
            "substance_or_mental_health",
            "moderate_to_serious",
        ),
        ({}, ("separation_past_year",), "dash-ric", "separation_past_year", "moderate_to_serious"),
        ({}, PLAIN_ITEMS_RIC[:14], "dash-ric", "victim_high", "serious"),
        ({"injured": True}, (), "dash-ric", "child_injured", "serious"),
        ({"intervened": True}, (), "dash-ric", "child_intervened", "serious"),
        ({}, ("harmed_children",), "dash-police", "children_harmed_or_threatened", "serious"),
        ({}, ("threatened_children",), "dash-police", "children_harmed_or_threatened", "serious"),
        ({"existing_plan": "child_in_need"}, (), "dash-ric", "existing_plan", "serious"),
        ({"existing_plan": "child_protection"}, (), "dash-ric", "existing_plan", "serious"),
    ],
)
def test_each_child_rule_alone_gives_its_level(
    definitions: DefinitionSet,
    facts: dict[str, Any],
    yes: tuple[str, ...],
    instrument: str,
    expected_rule: str,
    expected_level: str,
) -> None:
    assessed, _ = assess_child(definitions, child(**facts), yes=yes, instrument=instrument)
    assert expected_rule in fired_rules(assessed)
    assert assessed.level == expected_level
    assert assessed.rule_level == expected_level


@pytest.mark.parametrize("plan", ["none", "looked_after", "unknown"])
def test_other_existing_plans_do_not_raise_the_level(definitions: DefinitionSet, plan: str) -> None:
    assessed, _ = assess_child(definitions, child(existing_plan=plan))
    assert assessed.level == "moderate"


@pytest.mark.parametrize("critical", ["strangulation", "weapons_used", "threat_to_kill"])
def test_child_present_when_a_critical_item_is_yes_is_serious(
    definitions: DefinitionSet, critical: str
) -> None:
    assessed, result = assess_child(definitions, child(present=True), yes=[critical])
    assert result.victim.level == "medium"  # one critical item: red flag
    assert "present_at_critical_incident" in fired_rules(assessed)
    assert assessed.level == "serious"


@pytest.mark.parametrize("critical", ["strangulation", "weapons_used", "threat_to_kill"])
def test_child_injured_with_a_critical_item_is_severe(
    definitions: DefinitionSet, critical: str
) -> None:
    assessed, _ = assess_child(definitions, child(injured=True), yes=[critical])
    assert "injured_with_critical_item" in fired_rules(assessed)
    assert assessed.level == "severe"
    assert assessed.recommended_response == "strategy_discussion"


@pytest.mark.parametrize(
    ("critical", "expected_level"),
    [("strangulation", "severe"), ("weapons_used", "severe"), ("threat_to_kill", "serious")],
)
def test_victim_high_and_child_present_is_severe_only_for_strangulation_or_weapons(
    definitions: DefinitionSet, critical: str, expected_level: str
) -> None:
    assessed, result = assess_child(
        definitions, child(present=True), yes=(*PLAIN_ITEMS_RIC[:13], critical)
    )
    assert result.victim.level == "high"
    assert assessed.level == expected_level
    severe = "present_victim_high_strangulation_or_weapon" in fired_rules(assessed)
    assert severe is (expected_level == "severe")


def test_child_not_present_with_a_critical_item_is_not_raised_for_presence(
    definitions: DefinitionSet,
) -> None:
    assessed, _ = assess_child(definitions, child(present=False), yes=["strangulation"])
    assert "present_at_critical_incident" not in fired_rules(assessed)
    # The victim is medium through the red flag, and that rule still applies.
    assert assessed.level == "moderate_to_serious"


def test_child_rules_use_the_final_victim_level_after_marac(definitions: DefinitionSet) -> None:
    # Score 0, but potential escalation (3 incidents in 12 months) makes the victim high.
    assessed, result = assess_child(
        definitions, child(), victim_history={"prior_da_incidents_12m": 2}
    )
    assert result.victim.score_level == "standard"
    assert result.victim.level == "high"
    assert "victim_high" in fired_rules(assessed)
    assert assessed.level == "serious"


def test_child_rules_use_the_final_victim_level_after_judgement(
    definitions: DefinitionSet,
) -> None:
    assessed, _ = assess_child(
        definitions,
        child(),
        officer={"professional_judgement": "medium", "rationale": "Victim very afraid."},
    )
    assert "victim_medium" in fired_rules(assessed)
    assert assessed.level == "moderate_to_serious"


@pytest.mark.parametrize(
    ("level_rules", "expected"),
    [
        ({}, "universal_support"),
        ({"present": True}, "early_help"),
        ({"injured": True}, "child_in_need_assessment"),
    ],
)
def test_recommended_response_follows_the_level(
    definitions: DefinitionSet, level_rules: dict[str, Any], expected: str
) -> None:
    assessed, _ = assess_child(definitions, child(**level_rules))
    assert assessed.recommended_response == expected


def test_rule_details_are_the_rule_conditions_in_words(definitions: DefinitionSet) -> None:
    assessed, _ = assess_child(definitions, child(present=True))
    by_rule = {t.rule: t for t in assessed.triggers}
    assert by_rule["present_or_witnessed"].detail == "child present or child witnessed the abuse"
    assert by_rule["child_injured"].detail == "not met: child injured"
    assert by_rule["child_injured"].effect == "none"
    assert len(assessed.triggers) == 13 + 1  # every rule, then the vulnerability step


# --- The age and vulnerability step -----------------------------------------------------


@pytest.mark.parametrize(
    ("date_of_birth", "expected_age", "steps_up"),
    [
        ("2026-11-20", 0, True),  # born on the incident date
        ("2026-01-01", 0, True),
        ("2020-11-21", 5, True),  # sixth birthday the day after the incident
        ("2020-11-20", 6, True),
        ("2019-11-21", 6, True),  # seventh birthday the day after the incident
        ("2019-11-20", 7, False),  # seventh birthday on the incident date
        ("2019-11-19", 7, False),  # seventh birthday the day before
        ("2014-01-10", 12, False),
    ],
)
def test_children_under_seven_move_one_level_up(
    definitions: DefinitionSet, date_of_birth: str, expected_age: int, steps_up: bool
) -> None:
    assessed, _ = assess_child(definitions, child(date_of_birth=date_of_birth, present=True))
    assert assessed.age_years == expected_age
    assert assessed.rule_level == "moderate_to_serious"
    assert assessed.level == ("serious" if steps_up else "moderate_to_serious")
    step = assessed.triggers[-1]
    assert step.rule == "vulnerability_step"
    assert step.fired is steps_up
    if steps_up:
        assert step.detail == f"aged {expected_age}, under 7: moderate_to_serious to serious"
    else:
        assert step.detail == f"aged {expected_age}; no step"


def test_unborn_child_moves_one_level_up_and_has_no_age(definitions: DefinitionSet) -> None:
    assessed, _ = assess_child(definitions, child(unborn=True))
    assert assessed.unborn
    assert assessed.age_years is None
    assert (assessed.rule_level, assessed.level) == ("moderate", "moderate_to_serious")
    assert assessed.triggers[-1].detail == "unborn: moderate to moderate_to_serious"


def test_disability_or_additional_needs_moves_one_level_up(definitions: DefinitionSet) -> None:
    assessed, _ = assess_child(definitions, child(disability_or_additional_needs=True))
    assert assessed.level == "moderate_to_serious"
    assert "disability or additional needs" in assessed.triggers[-1].detail


def test_several_vulnerabilities_still_move_only_one_level(definitions: DefinitionSet) -> None:
    person = child(date_of_birth="2023-05-01", disability_or_additional_needs=True)
    assessed, _ = assess_child(definitions, person)
    assert assessed.level == "moderate_to_serious"
    assert assessed.triggers[-1].detail == (
        "aged 3, under 7; disability or additional needs: moderate to moderate_to_serious"
    )


def test_the_step_never_goes_above_severe(definitions: DefinitionSet) -> None:
    assessed, _ = assess_child(definitions, child(unborn=True, injured=True), yes=["strangulation"])
    assert assessed.rule_level == "severe"
    assert assessed.level == "severe"
    step = assessed.triggers[-1]
    assert (step.fired, step.detail) == (True, "unborn: already severe, the highest")


def test_unknown_date_of_birth_gives_no_step_and_says_age_unknown(
    definitions: DefinitionSet,
) -> None:
    assessed, result = assess_child(definitions, child(date_of_birth=None, present=True))
    assert assessed.age_years is None
    assert assessed.level == "moderate_to_serious"
    assert assessed.triggers[-1].detail == "age unknown (no date of birth); no step"
    assert "c1 (age unknown)" in result.summary


def test_age_uses_the_incident_date_in_london(definitions: DefinitionSet) -> None:
    # 23:30 UTC on 30 June is 00:30 on 1 July in London (BST): the seventh birthday.
    assessed, _ = assess_child(
        definitions, child(date_of_birth="2019-07-01"), occurred_at="2026-06-30T23:30:00Z"
    )
    assert assessed.age_years == 7
    assert assessed.level == "moderate"


@pytest.mark.parametrize(
    ("occurred_at", "expected_age"),
    [("2023-02-28T12:00:00Z", 6), ("2023-03-01T12:00:00Z", 7), ("2024-02-29T12:00:00Z", 8)],
)
def test_a_leap_day_birthday_counts_from_the_first_of_march(
    definitions: DefinitionSet, occurred_at: str, expected_age: int
) -> None:
    assessed, _ = assess_child(
        definitions, child(date_of_birth="2016-02-29"), occurred_at=occurred_at
    )
    assert assessed.age_years == expected_age


# --- Every child, in order -----------------------------------------------------------------


def test_every_child_is_assessed_present_or_not_unborn_included(
    definitions: DefinitionSet,
) -> None:
    built = make_incident(
        yes=["strangulation"],
        children=[
            child("c1", present=True, spoken_to_by_officer=False),
            child("c2", present=False),
            child("c3", unborn=True),
            child("c4", date_of_birth=None),
        ],
    )
    result = assess(built, History.reported(built), definitions)
    assert [(c.person_ref, c.level) for c in result.children] == [
        ("c1", "serious"),
        ("c2", "moderate_to_serious"),
        ("c3", "serious"),
        ("c4", "moderate_to_serious"),
    ]
    assert "Four children: c1 (aged 12) serious — present, not spoken to;" in result.summary
    assert "c3 (unborn) serious (raised for age or vulnerability)" in result.summary


def test_child_items_list_the_facts_with_values_and_sources(definitions: DefinitionSet) -> None:
    assessed, _ = assess_child(
        definitions, child(present=True, existing_plan="none"), yes=["strangulation"]
    )
    items = {item.id: (item.value, item.source) for item in assessed.items}
    assert items["present"] == (True, "child")
    assert items["injured"] == (None, "child")
    assert items["existing_plan"] == ("none", "child")
    assert items["victim_level"] == ("medium", "victim")
    assert items["strangulation"] == ("yes", "victim_checklist")
    # A police-only item is never asked on the 24-item checklist.
    assert items["harmed_children"] == ("not_asked", "victim_checklist")


def test_no_children_is_said_in_the_summary(definitions: DefinitionSet) -> None:
    built = make_incident()
    result = assess(built, History.reported(built), definitions)
    assert result.children == ()
    assert "No children recorded." in result.summary
