"""Rules version 2 in the engine and the registry (docs/rules.md): effective answers and
their sources, the victim's own view, incomplete assessments, the red-flag MARAC
criterion, responses by plan, judgements of a child; version 1 unchanged beside it.

The API-level scenarios (flags, due times, the fifteen practitioner cases) are in
test_rules_v2_scenarios.py. All data is invented (tests/data/README.md).
"""

from __future__ import annotations

import copy
import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from app.contract.incident import Incident, stored_incident
from app.scoring import DefinitionRegistry, DefinitionSet, load_registry
from app.scoring.digest import inputs_digest
from app.scoring.engine import assess
from app.scoring.history import History
from app.scoring.judgement import Judgement, JudgementError
from app.scoring.registry import DefinitionError, definition_from_document
from app.scoring.reproduce import reproduce
from tests.scoring.factories import answers, child, example_incident_dict, incident_dict

GOLDEN = Path(__file__).resolve().parents[1] / "data" / "v1-assessments.json"
AT = dt.datetime(2026, 11, 21, 9, 0, tzinfo=dt.UTC)


def run(
    raw: dict[str, Any], definitions: DefinitionSet, judgements: tuple[Judgement, ...] = ()
) -> Any:
    incident = Incident.model_validate(raw)
    return assess(incident, History.reported(incident), definitions, judgements)


def item(result: Any, item_id: str) -> dict[str, Any]:
    return next(i for i in result.to_dict()["victim"]["items"] if i["id"] == item_id)


def trigger(triggers: Any, rule: str) -> Any:
    return next(t for t in triggers if t.rule == rule)


# -- version 1 still reproduces ---------------------------------------------------------


@pytest.mark.parametrize("case", json.loads(GOLDEN.read_text())["cases"], ids=lambda c: c["name"])
def test_assessments_made_with_version_1_before_the_upgrade_reproduce_identically(
    case: dict[str, Any], registry: DefinitionRegistry
) -> None:
    """Made by the code before rules v2 existed (commit 8a0f3c8) and stored as JSON."""
    inputs = case["inputs"]
    result = reproduce(
        case["assessment"], inputs["incident"], inputs["history"], inputs["judgements"], registry
    )
    assert result.identical, result.differences
    incident = stored_incident(inputs["incident"])
    judgements = [Judgement.from_dict(j) for j in inputs["judgements"]]
    digest = inputs_digest(incident, History.from_dict(inputs["history"]), judgements)
    assert digest == case["assessment"]["inputs_digest"]


def test_the_golden_inputs_score_differently_under_version_2(registry: DefinitionRegistry) -> None:
    # The same stored inputs, re-scored with today's defaults: the strangulation and the
    # weapon the officer recorded count, whatever the victim answered.
    case = json.loads(GOLDEN.read_text())["cases"][2]
    incident = stored_incident(case["inputs"]["incident"])
    now = assess(incident, History.reported(incident), registry.default_set()).to_dict()
    assert now["victim"]["score"] == case["assessment"]["victim"]["score"] + 2
    sources = {i["id"]: i["source"] for i in now["victim"]["items"]}
    assert sources["strangulation"] == sources["weapons_used"] == "observed"


def test_unset_new_fields_leave_the_digest_as_it_was_and_set_ones_change_it() -> None:
    raw = example_incident_dict()
    incident = Incident.model_validate(raw)
    history = History.reported(incident)
    before = inputs_digest(incident, history, [])
    explicit = copy.deepcopy(raw)
    explicit["perpetrator_history"]["under_probation_supervision"] = None
    explicit["persons"][0]["care_and_support_needs"] = None
    same = Incident.model_validate(explicit)
    assert inputs_digest(same, History.reported(same), []) == before
    explicit["perpetrator_history"]["under_probation_supervision"] = True
    changed = Incident.model_validate(explicit)
    assert inputs_digest(changed, History.reported(changed), []) != before


# -- effective answers ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fact", "value", "item_id", "source"),
    [
        ("strangulation", True, "strangulation", "observed"),
        ("weapon_used", True, "weapons_used", "observed"),
        ("injury_to_victim", True, "current_injury", "observed"),
    ],
)
@pytest.mark.parametrize("answered", ["no", "unknown", "not_asked"])
def test_an_observed_fact_makes_the_item_yes_whatever_the_victim_answered(
    definitions_v2: DefinitionSet,
    definitions_v1: DefinitionSet,
    fact: str,
    value: bool,
    item_id: str,
    source: str,
    answered: str,
) -> None:
    raw = incident_dict(
        answer_map=answers(**{answered: [item_id]}) if answered != "no" else answers(),
        circumstances={fact: value},
    )
    v2 = run(raw, definitions_v2)
    assert item(v2, item_id) == {
        "id": item_id,
        "answer": answered,
        "points": 1,
        "label": item(v2, item_id)["label"],
        "effective_answer": "yes",
        "source": source,
        "fact": {"path": f"circumstances.{fact}", "value": True},
    }
    assert v2.victim.score == 1
    assert v2.victim.unknown_count == 0
    # Version 1 reads the victim's answer only, and its items keep their shape.
    v1 = run(raw, definitions_v1)
    assert v1.victim.score == 0
    assert set(item(v1, item_id)) == {"id", "answer", "points", "label"}


@pytest.mark.parametrize(
    ("status", "counts"),
    [
        ("recent", True),
        ("planned", True),
        ("perceived", True),
        ("historic", False),
        ("none", False),
    ],
)
def test_a_recorded_separation_counts_as_separation_in_the_past_year(
    definitions_v2: DefinitionSet, status: str, counts: bool
) -> None:
    raw = incident_dict()
    raw["relationship"]["separation"] = {"status": status}
    result = run(raw, definitions_v2)
    shown = item(result, "separation_past_year")
    assert shown["answer"] == "no"
    assert shown["fact"] == {"path": "relationship.separation.status", "value": status}
    assert (shown["effective_answer"], shown["source"]) == (
        ("yes", "recorded") if counts else ("no", "answer")
    )
    assert result.victim.score == (1 if counts else 0)


def test_items_without_a_fact_say_their_source_is_the_answer(
    definitions_v2: DefinitionSet,
) -> None:
    result = run(incident_dict(yes=["isolated"], unknown=["sexual_abuse"]), definitions_v2)
    assert item(result, "isolated") == {
        "id": "isolated",
        "answer": "yes",
        "points": 1,
        "label": item(result, "isolated")["label"],
        "effective_answer": "yes",
        "source": "answer",
    }
    assert item(result, "sexual_abuse")["effective_answer"] == "unknown"


def test_effective_answers_feed_the_red_flag_and_the_child_rules(
    definitions_v2: DefinitionSet,
) -> None:
    # Strangulation and a weapon seen by the officer, the victim answered neither:
    # two critical items → high, the red-flag MARAC criterion, and a present child at a
    # critical incident is serious (then severe with the victim high and present).
    raw = incident_dict(
        circumstances={"strangulation": True, "weapon_used": True},
        children=[child(present=True)],
    )
    result = run(raw, definitions_v2)
    assert result.victim.level == "high"
    assert result.victim.marac.criteria == ("red_flag_high",)
    assert result.children[0].level == "severe"
    used = {i.id: (i.value, i.source) for i in result.children[0].items}
    assert used["strangulation"] == ("yes", "observed")
    assert used["weapons_used"] == ("yes", "observed")
    assert "seen" in result.summary or "observed" in result.summary


# -- the victim's own view, incomplete assessments, red flags to MARAC -------------------


@pytest.mark.parametrize(
    ("perceived", "yes", "level", "fired"),
    [
        ("high", [], "medium", True),
        ("medium", [], "standard", False),
        ("standard", [], "standard", False),
        (None, [], "standard", False),
        # A floor, never a ceiling: a high victim stays high.
        ("high", ["strangulation", "threat_to_kill"], "high", True),
    ],
)
def test_the_victims_own_view_of_high_risk_is_at_least_medium(
    definitions_v2: DefinitionSet,
    perceived: str | None,
    yes: list[str],
    level: str,
    fired: bool,
) -> None:
    officer = {"victim_perception": perceived} if perceived else {}
    result = run(incident_dict(yes=yes, officer=officer), definitions_v2)
    assert result.victim.level == level
    perception = trigger(result.victim.triggers, "victim_perception")
    assert perception.fired is fired
    assert perception.stage == "perception"


@pytest.mark.parametrize(("unknowns", "fired"), [(5, False), (6, True), (24, True)])
def test_incomplete_assessment_fires_from_six_unknowns_and_never_changes_the_level(
    definitions_v2: DefinitionSet, unknowns: int, fired: bool
) -> None:
    items = list(answers())[:unknowns]
    # Unknown and not asked both count; so does an item left out.
    half = unknowns // 2
    raw = incident_dict(answer_map=answers(unknown=items[:half], omit=items[half:]))
    result = run(raw, definitions_v2)
    assert result.victim.unknown_count == unknowns
    incomplete = trigger(result.victim.triggers, "incomplete_assessment")
    assert incomplete.fired is fired
    assert incomplete.effect == "none"
    assert result.victim.level == "standard"


def test_an_observed_fact_takes_an_unknown_out_of_the_count(
    definitions_v2: DefinitionSet,
) -> None:
    items = ["strangulation", "isolated", "sexual_abuse", "animal_abuse", "financial_issues"]
    raw = incident_dict(answer_map=answers(unknown=items[:5], not_asked=["criminal_history"]))
    raw["circumstances"] = {"strangulation": True}
    result = run(raw, definitions_v2)
    assert result.victim.unknown_count == 5
    assert not trigger(result.victim.triggers, "incomplete_assessment").fired


@pytest.mark.parametrize("absent", ["no_answers", "not_completed"])
def test_an_absent_checklist_is_incomplete(definitions_v2: DefinitionSet, absent: str) -> None:
    raw = incident_dict(answer_map={} if absent == "no_answers" else answers())
    if absent == "not_completed":
        raw["victim_checklist"]["answered_by"] = "not_completed"
    incomplete = trigger(run(raw, definitions_v2).victim.triggers, "incomplete_assessment")
    assert incomplete.fired
    assert "checklist absent" in incomplete.detail


@pytest.mark.parametrize(
    ("yes", "referred"),
    [
        (["strangulation", "pregnant_or_recent_birth", "separation_past_year"], True),
        (["strangulation", "threat_to_kill"], True),
        (["strangulation", "pregnant_or_recent_birth"], False),  # medium, not high
        ([], False),
    ],
)
def test_a_red_flag_high_is_a_marac_criterion(
    definitions_v2: DefinitionSet, definitions_v1: DefinitionSet, yes: list[str], referred: bool
) -> None:
    v2 = run(incident_dict(yes=yes), definitions_v2)
    assert v2.victim.marac.refer is referred
    assert ("red_flag_high" in v2.victim.marac.criteria) is referred
    assert trigger(v2.victim.triggers, "red_flag_high").fired is referred
    v1 = run(incident_dict(yes=yes), definitions_v1)
    assert "red_flag_high" not in v1.victim.marac.criteria
    assert all(t.rule != "red_flag_high" for t in v1.victim.triggers)


def test_version_1_victim_triggers_are_exactly_as_before(definitions_v1: DefinitionSet) -> None:
    raw = incident_dict(officer={"victim_perception": "high"}, answer_map={})
    rules = [t.rule for t in run(raw, definitions_v1).victim.triggers]
    assert "victim_perception" not in rules
    assert "incomplete_assessment" not in rules


# -- children: responses by plan, judgement ---------------------------------------------


@pytest.mark.parametrize(
    ("facts", "plan", "level", "response"),
    [
        ({"injured": True}, "child_protection", "serious", "notify_allocated_social_worker"),
        ({"injured": True}, "child_in_need", "serious", "notify_allocated_social_worker"),
        ({"injured": True}, "looked_after", "serious", "notify_allocated_social_worker"),
        ({"injured": True}, "early_help", "serious", "child_in_need_assessment"),
        ({"injured": True}, "none", "serious", "child_in_need_assessment"),
        ({"present": True}, "early_help", "moderate_to_serious", "notify_lead_professional"),
        ({"present": True}, "none", "moderate_to_serious", "early_help"),
        ({"present": True}, "looked_after", "moderate_to_serious", "early_help"),
        ({}, "looked_after", "moderate", "universal_support"),
        ({}, "early_help", "moderate", "universal_support"),
    ],
)
def test_a_child_already_on_a_plan_goes_to_whoever_leads_it(
    definitions_v2: DefinitionSet,
    definitions_v1: DefinitionSet,
    facts: dict[str, Any],
    plan: str,
    level: str,
    response: str,
) -> None:
    raw = incident_dict(children=[child(existing_plan=plan, **facts)])
    [assessed] = run(raw, definitions_v2).children
    assert (assessed.level, assessed.recommended_response) == (level, response)
    if plan != "early_help":  # a value version 1 never saw
        [before] = run(raw, definitions_v1).children
        assert before.recommended_response in (
            "universal_support",
            "early_help",
            "child_in_need_assessment",
        )


def test_a_severe_child_gets_a_strategy_discussion_whatever_the_plan(
    definitions_v2: DefinitionSet,
) -> None:
    for plan in ("none", "early_help", "child_in_need", "child_protection", "looked_after"):
        raw = incident_dict(
            yes=["strangulation"], children=[child(injured=True, existing_plan=plan)]
        )
        [assessed] = run(raw, definitions_v2).children
        assert (assessed.level, assessed.recommended_response) == (
            "severe",
            "strategy_discussion",
        )


def judged(level: str, ref: str = "c1", minutes: int = 0) -> Judgement:
    return Judgement(
        level=level,  # type: ignore[arg-type]
        rationale="Seen by the school nurse; invented for a test.",
        by="triage-1",
        at=AT + dt.timedelta(minutes=minutes),
        subject_ref=ref,
    )


def test_a_judgement_raises_one_child_and_is_its_trigger(definitions_v2: DefinitionSet) -> None:
    raw = incident_dict(children=[child("c1"), child("c2")])
    result = run(raw, definitions_v2, (judged("serious"),))
    c1, c2 = result.children
    assert (c1.level, c1.rule_level, c1.recommended_response) == (
        "serious",
        "moderate",
        "child_in_need_assessment",
    )
    assert c2.level == "moderate"
    pj = trigger(c1.triggers, "professional_judgement")
    assert (pj.fired, pj.effect, pj.stage) == (True, "serious", "judgement")
    assert "raises moderate to serious" in pj.detail
    assert all(t.rule != "professional_judgement" for t in c2.triggers)
    assert result.victim.level == "standard"
    assert "professional judgement" in result.summary


def test_a_judgement_below_the_childs_level_is_recorded_and_ignored(
    definitions_v2: DefinitionSet,
) -> None:
    raw = incident_dict(children=[child(injured=True)])
    [assessed] = run(raw, definitions_v2, (judged("moderate"),)).children
    assert assessed.level == "serious"
    pj = trigger(assessed.triggers, "professional_judgement")
    assert not pj.fired
    assert "cannot lower" in pj.detail


def test_a_childs_judgement_reproduces(
    definitions_v2: DefinitionSet, registry: DefinitionRegistry
) -> None:
    incident = Incident.model_validate(incident_dict(children=[child()]))
    history = History.reported(incident)
    judgements = (judged("severe"), judged("serious", minutes=5))
    stored = json.loads(json.dumps(assess(incident, history, definitions_v2, judgements).to_dict()))
    assert stored["children"][0]["level"] == "severe"
    as_stored = [json.loads(json.dumps(j.to_dict())) for j in judgements]
    assert all(j["subject_ref"] == "c1" for j in as_stored)
    result = reproduce(
        stored, incident.model_dump(mode="json"), history.to_dict(), as_stored, registry
    )
    assert result.identical, result.differences


def test_a_childs_judgement_needs_a_child_level_and_a_rationale() -> None:
    with pytest.raises(JudgementError):
        Judgement(level="high", rationale="x", by="t", at=AT, subject_ref="c1")
    with pytest.raises(JudgementError):
        Judgement(level="severe", rationale="x", by="t", at=AT)
    with pytest.raises(JudgementError):
        Judgement(level="severe", rationale=" ", by="t", at=AT, subject_ref="c1")


# -- the rule language: refused definitions --------------------------------------------


def v2_document(name: str) -> dict[str, Any]:
    registry = load_registry()
    return copy.deepcopy(registry.get_ref(name).document())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["effective_answers"].append(dict(d["effective_answers"][0])), "has a rule"),
        (lambda d: d["effective_answers"][0].update(item="no_such_item"), "not an item"),
        (
            lambda d: d["effective_answers"][0].update(incident="circumstances.nothing"),
            "no field",
        ),
        (lambda d: d["effective_answers"][0].update({"is": "yes"}), "not a possible value"),
        (lambda d: d["effective_answers"][0].update({"is": None}), "not recorded"),
        (lambda d: d["effective_answers"][3].update({"is": True}), "exactly one"),
        (lambda d: d["effective_answers"][0].update(source="rumour"), "source"),
        (lambda d: d["incomplete_assessment"].update(unknown_from=25), "above the item count"),
        (lambda d: d["victim_perception"].update(at_least="severe"), "at_least"),
    ],
)
def test_a_faulty_version_2_checklist_is_refused_naming_the_problem(
    change: Any, message: str
) -> None:
    document = v2_document("dash-ric@2")
    change(document)
    with pytest.raises(DefinitionError, match=message):
        definition_from_document(document, "dash-ric@2.yaml")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d["responses_by_plan"]["serious"].update(adopted="early_help"), "unknown plan"),
        (
            lambda d: d["responses_by_plan"]["serious"].update(child_in_need="phone_call"),
            "unknown response",
        ),
    ],
)
def test_a_faulty_version_2_child_definition_is_refused(change: Any, message: str) -> None:
    document = v2_document("child-risk@2")
    change(document)
    with pytest.raises(DefinitionError, match=message):
        definition_from_document(document, "child-risk@2.yaml")
