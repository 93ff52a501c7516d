"""Victim scoring, hand-worked against docs/contract.md "Scoring defaults" (test data invented)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from app.contract.incident import Incident
from app.scoring import (
    Assessment,
    DefinitionSet,
    History,
    Judgement,
    JudgementError,
    assess,
)
from app.scoring.results import Trigger
from app.scoring.schemas import JudgementIn
from tests.scoring.factories import (
    AGGRAVATING,
    PLAIN_ITEMS_POLICE,
    PLAIN_ITEMS_RIC,
    at,
    incident_dict,
    make_incident,
)


def run(
    incident: Incident, definitions: DefinitionSet, judgements: tuple[Judgement, ...] = ()
) -> Assessment:
    return assess(incident, History.reported(incident), definitions, judgements)


def trigger(assessment: Assessment, rule: str, stage: str | None = None) -> Trigger:
    matches = [
        t
        for t in assessment.victim.triggers
        if t.rule == rule and (stage is None or t.stage == stage)
    ]
    assert len(matches) == 1, matches
    return matches[0]


# --- Score bands: every threshold edge --------------------------------------------------


@pytest.mark.parametrize(
    ("instrument", "plain", "score", "expected_band", "expected_level"),
    [
        ("dash-ric", PLAIN_ITEMS_RIC, 0, "standard", "standard"),
        ("dash-ric", PLAIN_ITEMS_RIC, 9, "standard", "standard"),
        ("dash-ric", PLAIN_ITEMS_RIC, 10, "medium", "medium"),
        ("dash-ric", PLAIN_ITEMS_RIC, 13, "medium", "medium"),
        ("dash-ric", PLAIN_ITEMS_RIC, 14, "high", "high"),
        ("dash-police", PLAIN_ITEMS_POLICE, 9, "standard", "standard"),
        ("dash-police", PLAIN_ITEMS_POLICE, 10, "medium", "medium"),
        ("dash-police", PLAIN_ITEMS_POLICE, 13, "medium", "medium"),
        ("dash-police", PLAIN_ITEMS_POLICE, 14, "high", "high"),
        ("dash-police", PLAIN_ITEMS_POLICE, 17, "high", "high"),
    ],
)
def test_score_band_edges_give_the_configured_level(
    definitions: DefinitionSet,
    instrument: str,
    plain: tuple[str, ...],
    score: int,
    expected_band: str,
    expected_level: str,
) -> None:
    result = run(make_incident(instrument=instrument, yes=plain[:score]), definitions)
    victim = result.victim
    assert victim.score == score
    assert victim.max_score == (24 if instrument == "dash-ric" else 27)
    assert victim.score_level == expected_band
    assert victim.level == expected_level
    assert victim.checklist.id == instrument
    band = trigger(result, "score_band")
    assert band.effect == expected_band
    assert band.detail.startswith(f"{score} of {victim.max_score}")


def test_fourteen_yes_meets_marac_on_visible_high_risk_and_thirteen_does_not(
    definitions: DefinitionSet,
) -> None:
    fourteen = run(make_incident(yes=PLAIN_ITEMS_RIC[:14]), definitions)
    thirteen = run(make_incident(yes=PLAIN_ITEMS_RIC[:13]), definitions)
    assert fourteen.victim.marac.refer
    assert fourteen.victim.marac.criteria == ("visible_high_risk",)
    assert trigger(fourteen, "visible_high_risk").detail == "14 of 24 ≥ 14"
    assert not thirteen.victim.marac.refer
    visible = trigger(thirteen, "visible_high_risk")
    assert (visible.fired, visible.effect, visible.detail) == (False, "none", "13 of 24 < 14")


def test_items_list_every_item_with_answer_points_and_label(definitions: DefinitionSet) -> None:
    result = run(make_incident(yes=["strangulation"], unknown=["isolated"]), definitions)
    items = {item.id: item for item in result.victim.items}
    assert len(items) == 24
    assert (items["strangulation"].answer, items["strangulation"].points) == ("yes", 1)
    assert (items["isolated"].answer, items["isolated"].points) == ("unknown", 0)
    assert items["strangulation"].label == "Non-fatal strangulation or suffocation"


# --- Unknowns ---------------------------------------------------------------------------


def test_unknown_not_asked_and_left_out_answers_are_counted_and_never_score(
    definitions: DefinitionSet,
) -> None:
    answer_map = {
        "current_injury": "yes",
        "very_frightened": "yes",
        "criminal_history": "yes",
        "isolated": "unknown",
        "animal_abuse": "not_asked",
        "strangulation": "no",
    }
    # The other 18 items are left out, and so count as not asked.
    result = run(make_incident(answer_map=answer_map), definitions)
    victim = result.victim
    assert victim.score == 3
    assert victim.unknown_count == 1 + 1 + 18
    assert {i.answer for i in victim.items if i.id not in answer_map} == {"not_asked"}
    assert f"{victim.unknown_count} answers unknown or not asked" in result.summary


def test_no_unknowns_means_the_summary_does_not_mention_them(definitions: DefinitionSet) -> None:
    result = run(make_incident(yes=PLAIN_ITEMS_RIC[:3]), definitions)
    assert result.victim.unknown_count == 0
    assert "unknown" not in result.summary


# --- Red flags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yes", "expected_level", "fired"),
    [
        ((), "standard", False),
        (AGGRAVATING, "standard", False),  # aggravating items alone are not a red flag
        (("strangulation",), "medium", True),
        (("threat_to_kill",), "medium", True),
        (("weapons_used",), "medium", True),
        (("strangulation", "separation_past_year"), "medium", True),
        (("weapons_used", "separation_past_year", "stalking_harassment"), "high", True),
        (("threat_to_kill", "perpetrator_suicidal", "abuse_getting_worse"), "high", True),
        (("strangulation", "threat_to_kill"), "high", True),
        (("strangulation", "weapons_used"), "high", True),
        (("threat_to_kill", "weapons_used"), "high", True),
    ],
)
def test_red_flag_combinations_give_the_contract_level(
    definitions: DefinitionSet, yes: tuple[str, ...], expected_level: str, fired: bool
) -> None:
    result = run(make_incident(yes=yes), definitions)
    red_flag = trigger(result, "red_flag")
    assert red_flag.fired is fired
    assert red_flag.effect == (expected_level if fired else "none")
    assert result.victim.level == expected_level
    assert result.victim.score_level == "standard"


def test_red_flag_details_say_which_items_counted(definitions: DefinitionSet) -> None:
    one = trigger(
        run(make_incident(yes=["strangulation", "stalking_harassment"]), definitions), "red_flag"
    )
    assert one.detail == (
        "strangulation = yes → at least medium; 1 aggravating (stalking_harassment), "
        "2 needed for high"
    )
    two = trigger(
        run(
            make_incident(yes=["strangulation", "stalking_harassment", "separation_past_year"]),
            definitions,
        ),
        "red_flag",
    )
    assert two.detail == (
        "strangulation = yes with 2 aggravating (separation_past_year, stalking_harassment) → high"
    )
    none = trigger(run(make_incident(), definitions), "red_flag")
    assert none.detail == "none of strangulation, threat_to_kill, weapons_used = yes"


def test_red_flag_never_lowers_a_high_score(definitions: DefinitionSet) -> None:
    result = run(make_incident(yes=(*PLAIN_ITEMS_RIC, "strangulation")), definitions)
    assert result.victim.level == "high"
    assert trigger(result, "red_flag").effect == "medium"


def test_a_raised_level_is_explained_in_the_summary(definitions: DefinitionSet) -> None:
    result = run(make_incident(yes=["strangulation"]), definitions)
    assert result.summary.startswith("Medium risk (score alone standard; raised by red flags)")
    assert "non-fatal strangulation or suffocation" in result.summary


# --- Professional judgement --------------------------------------------------------------


def officer(level: str) -> dict[str, Any]:
    return {"professional_judgement": level, "rationale": "Victim describes escalating fear."}


def test_officer_judgement_raises_the_level_and_meets_marac_when_high(
    definitions: DefinitionSet,
) -> None:
    result = run(make_incident(yes=PLAIN_ITEMS_RIC[:3], officer=officer("high")), definitions)
    judged = trigger(result, "professional_judgement", "judgement")
    assert (judged.fired, judged.effect) == (True, "high")
    assert "raises standard to high" in judged.detail
    assert "officer-1" in judged.detail  # who judged, as submitted
    assert result.victim.level == "high"
    assert result.victim.marac.criteria == ("professional_judgement",)
    assert trigger(result, "professional_judgement", "marac").fired


def test_judgement_of_medium_raises_without_meeting_marac(definitions: DefinitionSet) -> None:
    result = run(make_incident(officer=officer("medium")), definitions)
    assert result.victim.level == "medium"
    assert not result.victim.marac.refer


def test_judgement_that_would_lower_is_ignored_but_recorded(definitions: DefinitionSet) -> None:
    incident = make_incident(yes=PLAIN_ITEMS_RIC[:12])  # medium by score
    later = Judgement(
        level="standard",
        rationale="Victim says things are calmer now.",
        by="triage-7",
        at=at("2026-11-21T09:00:00+00:00"),
    )
    result = run(incident, definitions, (later,))
    judged = trigger(result, "professional_judgement", "judgement")
    assert (judged.fired, judged.effect) == (False, "none")
    assert "ignored" in judged.detail
    assert "judgement cannot lower" in judged.detail
    assert result.victim.level == "medium"
    assert result.judgements_considered == 1


def test_later_judgement_cannot_lower_an_earlier_higher_judgement(
    definitions: DefinitionSet,
) -> None:
    incident = make_incident(officer=officer("high"))
    later = Judgement("medium", "Reviewed next day.", "triage-7", at("2026-11-21T09:00:00Z"))
    result = run(incident, definitions, (later,))
    judgements = [
        t
        for t in result.victim.triggers
        if t.rule == "professional_judgement" and t.stage == "judgement"
    ]
    assert [(t.fired, t.effect) for t in judgements] == [(True, "high"), (False, "none")]
    assert result.victim.level == "high"


def test_later_judgements_apply_in_time_order(definitions: DefinitionSet) -> None:
    incident = make_incident()
    first = Judgement("medium", "First review.", "triage-1", at("2026-11-21T09:00:00Z"))
    second = Judgement("high", "Second review.", "triage-2", at("2026-11-22T09:00:00Z"))
    forwards = run(incident, definitions, (first, second))
    backwards = run(incident, definitions, (second, first))
    assert forwards.victim == backwards.victim
    details = [t.detail for t in forwards.victim.triggers if t.stage == "judgement"]
    assert "raises standard to medium" in details[0]
    assert "raises medium to high" in details[1]


@pytest.mark.parametrize("rationale", ["", "   ", "\n"])
def test_judgement_without_rationale_is_rejected(rationale: str) -> None:
    with pytest.raises(JudgementError, match="needs a rationale"):
        Judgement("high", rationale, "triage-7", at("2026-11-21T09:00:00Z"))
    with pytest.raises(ValidationError):
        JudgementIn.model_validate({"level": "high", "rationale": rationale})


def test_officer_judgement_without_rationale_is_rejected_at_intake() -> None:
    raw = incident_dict(officer={"professional_judgement": "high"})
    with pytest.raises(ValidationError, match="needs a rationale"):
        Incident.model_validate(raw)


def test_judgement_needs_a_time_with_an_offset() -> None:
    with pytest.raises(JudgementError, match="offset"):
        Judgement("high", "Reasons.", "triage-7", at("2026-11-21T09:00:00"))


# --- MARAC routes, each alone -----------------------------------------------------------


@pytest.mark.parametrize(
    ("reported", "fires"),
    [(None, False), (0, False), (1, False), (2, True), (5, True)],
)
def test_potential_escalation_counts_this_incident_plus_reported_prior_incidents(
    definitions: DefinitionSet, reported: int | None, fires: bool
) -> None:
    history = {} if reported is None else {"prior_da_incidents_12m": reported}
    result = run(make_incident(victim_history=history), definitions)
    escalation = trigger(result, "potential_escalation")
    assert escalation.fired is fires
    assert result.victim.marac.criteria == (("potential_escalation",) if fires else ())
    assert result.victim.level == ("high" if fires else "standard")
    if reported == 2:
        assert escalation.detail.startswith("this incident + 2 earlier in 12 months = 3 ≥ 3")
        assert "reported 2" in escalation.detail
        assert "stored history not consulted" in escalation.detail


@pytest.mark.parametrize(
    ("referral", "fires"),
    [
        ("2026-11-20", True),  # the incident's own date
        ("2026-05-01", True),
        ("2025-11-20", True),  # exactly 12 months before: inside the window
        ("2025-11-19", False),  # a day more than 12 months before
        ("2024-01-01", False),
        ("2026-11-21", False),  # after the incident: not "before" it
    ],
)
def test_repeat_marac_fires_for_a_reported_referral_within_twelve_months(
    definitions: DefinitionSet, referral: str, fires: bool
) -> None:
    result = run(make_incident(victim_history={"last_marac_referral": referral}), definitions)
    repeat = trigger(result, "repeat_marac")
    assert repeat.fired is fires
    assert referral in repeat.detail
    assert "(reported)" in repeat.detail
    assert result.victim.marac.criteria == (("repeat_marac",) if fires else ())
    assert result.victim.level == ("high" if fires else "standard")


def test_every_rule_is_listed_even_when_none_fires(definitions_v1: DefinitionSet) -> None:
    result = run(make_incident(), definitions_v1)
    assert [(t.stage, t.rule, t.fired) for t in result.victim.triggers] == [
        ("score", "score_band", True),
        ("red_flag", "red_flag", False),
        ("judgement", "professional_judgement", False),
        ("marac", "visible_high_risk", False),
        ("marac", "professional_judgement", False),
        ("marac", "potential_escalation", False),
        ("marac", "repeat_marac", False),
    ]
    assert result.victim.level == "standard"
    assert "no MARAC criterion met" in result.summary


def test_contract_example_scores_fifteen_and_meets_two_marac_criteria(
    definitions_v1: DefinitionSet,
) -> None:
    from tests.scoring.factories import example_incident_dict

    incident = Incident.model_validate(example_incident_dict())
    result = run(incident, definitions_v1)
    assert (result.victim.score, result.victim.max_score, result.victim.unknown_count) == (
        15,
        24,
        2,
    )
    assert result.victim.level == "high"
    assert result.victim.marac.criteria == ("visible_high_risk", "potential_escalation")
    assert trigger(result, "visible_high_risk").detail == "15 of 24 ≥ 14"


# --- An area's own definition -------------------------------------------------------------


def test_area_definition_uses_its_own_bands(area_definitions: DefinitionSet) -> None:
    # The example area: 8-11 medium, 12+ high (visible high risk stays at 14).
    for score, level in ((7, "standard"), (8, "medium"), (11, "medium"), (12, "high")):
        result = run(make_incident(yes=PLAIN_ITEMS_RIC[:score]), area_definitions)
        assert result.victim.level == level, score
        assert result.victim.checklist.version == "local-example"
    twelve = run(make_incident(yes=PLAIN_ITEMS_RIC[:12]), area_definitions)
    assert not twelve.victim.marac.refer


def test_area_definition_needs_five_incidents_for_potential_escalation(
    area_definitions: DefinitionSet, definitions: DefinitionSet
) -> None:
    three = make_incident(victim_history={"prior_da_incidents_12m": 2})
    five = make_incident(victim_history={"prior_da_incidents_12m": 4})
    assert run(three, definitions).victim.marac.refer
    assert not run(three, area_definitions).victim.marac.refer
    assert trigger(run(three, area_definitions), "potential_escalation").detail.startswith(
        "this incident + 2 earlier in 12 months = 3 < 5"
    )
    assert run(five, area_definitions).victim.marac.criteria == ("potential_escalation",)


def test_area_definition_with_red_flags_off_records_the_rule_as_disabled(
    area_definitions: DefinitionSet,
) -> None:
    result = run(make_incident(yes=["strangulation", "threat_to_kill"]), area_definitions)
    red_flag = trigger(result, "red_flag")
    assert (red_flag.fired, red_flag.detail) == (False, "disabled in dash-ric@local-example")
    assert result.victim.level == "standard"


def test_instrument_chooses_the_checklist(area_definitions: DefinitionSet) -> None:
    police = run(make_incident(instrument="dash-police"), area_definitions)
    assert (police.victim.checklist.id, police.victim.checklist.version) == ("dash-police", "1")
    assert police.victim.max_score == 27
