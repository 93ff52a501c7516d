"""The flag-rule language added for rules v2 (docs/rules.md): the conditions, the priority
choice and the due-time policies, each refused when misused and exact at its edges."""

from __future__ import annotations

import copy
import datetime as dt
from typing import Any

import pytest

from app.flags import FlagRulesError, parse_rule_set
from app.flags.calendar import Calendar
from app.flags.ruleset import FlagRuleRegistry

UTC = dt.UTC


def v2_document() -> dict[str, Any]:
    return copy.deepcopy(FlagRuleRegistry.from_directory().get("default-flags@2").document())


def rule(document: dict[str, Any], rule_id: str) -> dict[str, Any]:
    return next(r for r in document["rules"] if r["id"] == rule_id)


@pytest.mark.parametrize(
    ("rule_id", "when", "message"),
    [
        ("perpetrator_action_police", {"perpetrator_marker": ["no_marker"]}, "unknown marker"),
        ("adult_safeguarding", {"victim": {"date_of_birth": "x"}}, "unknown victim field"),
        ("adult_safeguarding", {"victim": {"care_and_support_needs": "yes"}}, "possible value"),
        (
            "adult_safeguarding",
            {
                "victim_age_between": {
                    "min_years": 70,
                    "max_years": 65,
                    "include_unknown_age": False,
                }
            },
            "greater than",
        ),
        ("adult_safeguarding", {"victim_figure": "prior_da_incidents_12m", "at_least": 0}, "1"),
        ("adult_safeguarding", {"perpetrator_recorded": False}, "should be True"),
        ("long_term_review_3_months", {"victim_last_incident_within_months": 0}, "1"),
    ],
)
def test_a_misused_v2_condition_is_refused_naming_where(
    rule_id: str, when: dict[str, Any], message: str
) -> None:
    document = v2_document()
    rule(document, rule_id)["when"] = when
    with pytest.raises(FlagRulesError, match=message):
        parse_rule_set(document, origin="default-flags@2.yaml")


def test_a_child_condition_in_a_priority_choice_of_a_victim_rule_is_refused() -> None:
    document = v2_document()
    rule(document, "adult_safeguarding")["priority_when"] = [
        {"when": {"child_level_in": ["severe"]}, "priority": 1}
    ]
    with pytest.raises(FlagRulesError, match="need a child"):
        parse_rule_set(document, origin="default-flags@2.yaml")


def test_an_unknown_due_policy_is_refused() -> None:
    document = v2_document()
    rule(document, "complete_risk_assessment")["due"] = {"policy": "minutes", "minutes": 5}
    with pytest.raises(FlagRulesError, match="due"):
        parse_rule_set(document, origin="default-flags@2.yaml")


def london(text: str) -> dt.datetime:
    """A UTC instant (the parametrised times are UTC; the comments give London time)."""
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


# Monday 23 November 2026 is in GMT; Monday 30 March 2026 in BST (UTC+1).
@pytest.mark.parametrize(
    ("reported", "due"),
    [
        ("2026-11-23T01:30:00", "2026-11-23T08:30:00"),  # Monday night → Monday morning
        ("2026-11-23T08:29:00", "2026-11-23T08:30:00"),
        ("2026-11-23T08:30:00", "2026-11-24T08:30:00"),  # 08:30 is not after itself
        ("2026-11-23T09:00:00", "2026-11-24T08:30:00"),
        ("2026-11-27T23:00:00", "2026-11-30T08:30:00"),  # Friday 23:00 → Monday
        ("2026-11-28T10:00:00", "2026-11-30T08:30:00"),  # Saturday → Monday
        ("2026-03-30T07:29:00", "2026-03-30T07:30:00"),  # 08:29 BST → 08:30 BST
        ("2026-03-30T07:30:00", "2026-03-31T07:30:00"),  # 08:30 BST exactly → Tuesday
    ],
)
def test_next_school_start_is_the_first_0830_after_the_report(reported: str, due: str) -> None:
    assert Calendar().next_school_start_at(london(reported), dt.time(8, 30)) == london(due)


def test_next_school_start_skips_holidays_and_bank_holidays() -> None:
    calendar = Calendar.from_iso_dates(
        non_school_days=["2026-11-23"], non_working_days=["2026-11-24"]
    )
    due = calendar.next_school_start_at(london("2026-11-23T01:30:00"), dt.time(8, 30))
    assert due == london("2026-11-25T08:30:00")


@pytest.mark.parametrize(
    ("reported", "due"),
    [
        ("2026-11-20T23:40:00", "2026-11-21T03:40:00"),  # across midnight
        ("2026-03-29T00:30:00", "2026-03-29T04:30:00"),  # clocks go forward at 01:00 UTC
        ("2026-10-25T00:30:00", "2026-10-25T04:30:00"),  # clocks go back at 01:00 UTC
    ],
)
def test_hours_are_elapsed_hours_whatever_the_clock_does(reported: str, due: str) -> None:
    assert Calendar().hours_after(london(reported), 4) == london(due)
