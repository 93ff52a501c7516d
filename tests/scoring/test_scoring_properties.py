"""Properties over generated incidents (all generated data is invented)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from typing import Any

import pytest
import rfc8785
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.contract.incident import Incident
from app.contract.items import INSTRUMENT_ITEMS
from app.contract.levels import CHILD_LEVELS, CHILD_RANK, VICTIM_RANK
from app.scoring import (
    DefinitionRegistry,
    DefinitionSet,
    History,
    Judgement,
    assess,
    load_registry,
    reproduce,
)
from app.scoring.digest import canonical_inputs, inputs_document
from app.scoring.engine import (
    assess_children,
    assess_children_pair,
    assess_perpetrator,
    assess_victim,
    assess_victim_pair,
)
from app.scoring.registry import VictimChecklistDefinition, definition_from_document
from tests.scoring.factories import incident_dict

# Loaded once for the module: hypothesis runs many examples per test and must not share
# pytest's function-scoped fixtures.
REGISTRY: DefinitionRegistry = load_registry()
DEFINITION_SETS: tuple[DefinitionSet, ...] = (
    REGISTRY.default_set(),
    REGISTRY.definition_set(("dash-ric@1", "dash-police@1"), "child-risk@1"),
    REGISTRY.definition_set(("dash-ric@local-example", "dash-police@1")),
)
INCIDENT_DATE = dt.date(2026, 11, 20)


def _recompiled(definitions: DefinitionSet) -> DefinitionSet:
    """The same definitions compiled again: equal, with none of their objects shared."""
    checklists = {}
    for instrument, checklist in definitions.victim_checklists.items():
        copy = definition_from_document(checklist.document(), "copy")
        assert isinstance(copy, VictimChecklistDefinition)
        checklists[instrument] = copy
    return DefinitionSet(checklists, definitions.child_risk)


# For the victim part under two sets at once: the same objects, equal copies, other rules.
OTHER_SETS: tuple[DefinitionSet, ...] = (
    *DEFINITION_SETS,
    *(_recompiled(definitions) for definitions in DEFINITION_SETS),
)

maybe_bool = st.sampled_from([True, False, None])
OBSERVED_FACTS = ("strangulation", "weapon_used", "injury_to_victim")
SEPARATIONS = ("none", "recent", "planned", "perceived", "historic")


@st.composite
def child_strategy(draw: st.DrawFn, ref: str) -> dict[str, Any]:
    person: dict[str, Any] = {"ref": ref, "role": "child"}
    kind = draw(st.sampled_from(["born", "unborn", "unknown_age"]))
    if kind == "unborn":
        person |= {"unborn": True, "expected_date": "2027-03-01"}
    elif kind == "born":
        born = draw(st.dates(min_value=dt.date(2008, 1, 1), max_value=INCIDENT_DATE))
        person["date_of_birth"] = born.isoformat()
    facts = {
        name: draw(maybe_bool)
        for name in (
            "present",
            "witnessed",
            "injured",
            "intervened",
            "spoken_to_by_officer",
            "disability_or_additional_needs",
        )
    }
    facts["existing_plan"] = draw(
        st.sampled_from(
            [None, "none", "early_help", "child_in_need", "child_protection", "looked_after"]
        )
    )
    person["child"] = {k: v for k, v in facts.items() if v is not None}
    return person


@st.composite
def scenario(draw: st.DrawFn) -> tuple[Incident, tuple[Judgement, ...], DefinitionSet]:
    instrument = draw(st.sampled_from(sorted(INSTRUMENT_ITEMS)))
    answer_map = {
        item: answer
        for item in INSTRUMENT_ITEMS[instrument]
        if (answer := draw(st.sampled_from(["yes", "no", "no", "unknown", "not_asked", None])))
        is not None
    }
    count = draw(st.integers(min_value=0, max_value=3))
    children = [draw(child_strategy(f"c{i + 1}")) for i in range(count)]
    referral = draw(st.none() | st.dates(min_value=dt.date(2024, 6, 1), max_value=INCIDENT_DATE))
    victim_history = {
        "prior_da_incidents_12m": draw(st.none() | st.integers(min_value=0, max_value=5)),
        "last_marac_referral": None if referral is None else referral.isoformat(),
    }
    perpetrator_history = {
        "prior_da_victims": draw(st.none() | st.integers(min_value=0, max_value=2)),
        "prior_custody": draw(maybe_bool),
        "warning_markers": draw(
            st.lists(st.sampled_from(["weapons", "suicide", "drugs"]), unique=True)
        ),
    }
    officer_level = draw(st.sampled_from([None, "standard", "medium", "high"]))
    officer: dict[str, Any] = (
        {"professional_judgement": officer_level, "rationale": "Reasons given."}
        if officer_level
        else {}
    )
    perceived = draw(st.sampled_from([None, "standard", "medium", "high"]))
    if perceived:
        officer["victim_perception"] = perceived
    # What the officer saw (rules v2 counts it whatever the victim answered).
    circumstances = {
        name: value for name in OBSERVED_FACTS if (value := draw(maybe_bool)) is not None
    }
    raw = incident_dict(
        instrument=instrument,
        answer_map=answer_map,
        children=children,
        victim_history=victim_history,
        perpetrator_history=perpetrator_history,
        officer=officer,
        circumstances=circumstances,
    )
    raw["relationship"]["separation"] = {"status": draw(st.sampled_from(SEPARATIONS))}
    later = tuple(
        Judgement(
            level=draw(st.sampled_from(["standard", "medium", "high"])),
            rationale="Reviewed.",
            by=f"triage-{i}",
            at=dt.datetime(2026, 11, 21 + i, 9, tzinfo=dt.UTC),
        )
        for i in range(draw(st.integers(min_value=0, max_value=2)))
    )
    # Rules v2: judgements of a child, on the child ladder.
    later += tuple(
        Judgement(
            level=draw(st.sampled_from(CHILD_LEVELS)),
            rationale="Reviewed the child.",
            by="triage-c",
            at=dt.datetime(2026, 11, 24, 9, tzinfo=dt.UTC),
            subject_ref=draw(st.sampled_from([c["ref"] for c in children])),
        )
        for _ in range(draw(st.integers(min_value=0, max_value=1 if children else 0)))
    )
    definitions = draw(st.sampled_from(DEFINITION_SETS))
    return Incident.model_validate(raw), later, definitions


PROPERTY_SETTINGS = settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)


def with_answer(incident: Incident, item: str, answer: str) -> Incident:
    raw = incident.model_dump(mode="json")
    raw["victim_checklist"]["answers"][item] = answer
    return Incident.model_validate(raw)


@PROPERTY_SETTINGS
@given(case=scenario(), data=st.data())
def test_turning_a_no_into_yes_never_lowers_the_victim_or_any_child(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet], data: st.DataObject
) -> None:
    incident, judgements, definitions = case
    noes = sorted(i for i, a in incident.victim_checklist.answers.items() if a == "no")
    if not noes:
        return
    item = data.draw(st.sampled_from(noes))
    before = assess(incident, History.reported(incident), definitions, judgements)
    changed = with_answer(incident, item, "yes")
    after = assess(changed, History.reported(changed), definitions, judgements)
    # An answer already made yes by what the officer recorded (rules v2) scores once.
    already = next(i for i in before.victim.items if i.id == item).points
    assert after.victim.score == before.victim.score + 1 - already
    assert VICTIM_RANK[after.victim.level] >= VICTIM_RANK[before.victim.level]
    for old, new in zip(before.children, after.children, strict=True):
        assert CHILD_RANK[new.level] >= CHILD_RANK[old.level], (item, old.person_ref)


@PROPERTY_SETTINGS
@given(case=scenario())
def test_the_same_inputs_always_give_the_identical_dict(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet],
) -> None:
    incident, judgements, definitions = case
    first = assess(incident, History.reported(incident), definitions, judgements).to_dict()
    reparsed = Incident.model_validate(incident.model_dump(mode="json"))
    second = assess(reparsed, History.reported(reparsed), definitions, judgements).to_dict()
    assert first == second
    assert json.dumps(first, sort_keys=True) == json.dumps(second, sort_keys=True)


@PROPERTY_SETTINGS
@given(case=scenario())
def test_the_victim_part_alone_is_the_victim_part_of_the_whole_assessment(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet],
) -> None:
    """``assess_victim`` (what-if's victim-only path) gives exactly ``assess``'s victim and
    the first figures of its history, which are the victim's."""
    incident, judgements, definitions = case
    history = History.reported(incident)
    whole = assess(incident, history, definitions, judgements)
    victim, figures = assess_victim(incident, history, definitions, judgements)
    assert victim == whole.victim
    assert whole.history[: len(figures)] == figures
    assert all(f.subject == victim.person_ref for f in figures)


@PROPERTY_SETTINGS
@given(case=scenario(), other=st.sampled_from(OTHER_SETS))
def test_the_victim_part_under_two_definition_sets_is_each_alone(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet], other: DefinitionSet
) -> None:
    """``assess_victim_pair`` (what-if: current and draft at once, sharing what does not
    depend on the definitions) gives exactly ``assess_victim`` under each: with the same
    definition objects, with equal ones compiled again, and with other rules."""
    incident, judgements, definitions = case
    history = History.reported(incident)
    assert assess_victim_pair(incident, history, definitions, other, judgements) == (
        assess_victim(incident, history, definitions, judgements),
        assess_victim(incident, history, other, judgements),
    )


@PROPERTY_SETTINGS
@given(case=scenario(), other=st.sampled_from(OTHER_SETS))
def test_the_children_under_two_child_risk_definitions_are_each_alone(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet], other: DefinitionSet
) -> None:
    """``assess_children_pair`` (what-if of a child-risk draft: the victim's part scored
    once) gives exactly ``assess``'s children under each child-risk definition, and
    refuses two different victim checklists."""
    incident, judgements, definitions = case
    history = History.reported(incident)
    draft = dataclasses.replace(definitions, child_risk=other.child_risk)
    current = assess(incident, history, definitions, judgements)
    expected = (current.children, assess(incident, history, draft, judgements).children)
    assert assess_children_pair(incident, history, definitions, draft, judgements) == expected
    # Given the victim's final level (what-if: the stored one), the same without scoring it.
    level = current.victim.level
    assert (
        assess_children_pair(incident, history, definitions, draft, judgements, level) == expected
    )
    assert assess_children(incident, history, definitions, judgements) == current.children
    assert assess_perpetrator(incident, history) == current.perpetrator
    assert assess_children(incident, history, draft, judgements, level) == expected[1]
    instrument = incident.victim_checklist.instrument
    if other.victim_checklist(instrument).ref != definitions.victim_checklist(instrument).ref:
        with pytest.raises(ValueError, match="same victim checklist"):
            assess_children_pair(incident, history, definitions, other, judgements)


@PROPERTY_SETTINGS
@given(case=scenario())
def test_reproducing_stored_json_inputs_is_identical(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet],
) -> None:
    incident, judgements, definitions = case
    history = History.reported(incident)
    stored = json.loads(json.dumps(assess(incident, history, definitions, judgements).to_dict()))
    result = reproduce(
        stored,
        json.loads(json.dumps(incident.model_dump(mode="json"))),
        json.loads(json.dumps(history.to_dict())),
        [json.loads(json.dumps(j.to_dict())) for j in judgements],
        REGISTRY,
    )
    assert result.identical, result.differences


@PROPERTY_SETTINGS
@given(case=scenario())
def test_counts_and_levels_are_consistent(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet],
) -> None:
    incident, judgements, definitions = case
    result = assess(incident, History.reported(incident), definitions, judgements)
    victim = result.victim
    answers = [item.effective_answer or item.answer for item in victim.items]
    assert victim.score == answers.count("yes")
    assert victim.unknown_count == answers.count("unknown") + answers.count("not_asked")
    assert victim.score + victim.unknown_count + answers.count("no") == victim.max_score
    # The final level is never below the score's band, and a referral always means high.
    assert VICTIM_RANK[victim.level] >= VICTIM_RANK[victim.score_level]
    assert victim.marac.refer == bool(victim.marac.criteria)
    if victim.marac.refer:
        assert victim.level == "high"
    assert len(result.children) == len(incident.children)
    for assessed in result.children:
        judged = any(t.stage == "judgement" and t.fired for t in assessed.triggers)
        assert CHILD_RANK[assessed.level] - CHILD_RANK[assessed.rule_level] in (0, 1) or judged
        assert sum(t.stage == "step" for t in assessed.triggers) == 1


@PROPERTY_SETTINGS
@given(case=scenario(), comment=st.text(max_size=40))
def test_inputs_digest_uses_exactly_the_rfc_8785_canonical_form(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet], comment: str
) -> None:
    incident, judgements, _ = case
    # Free text with any characters (controls, quotes, non-ASCII) goes into the digest too.
    raw = incident.model_dump(mode="json")
    raw["victim_checklist"]["comments"] = {"isolated": comment}
    try:
        incident = Incident.model_validate(raw)
    except ValueError:
        return
    history = History.reported(incident)
    document = inputs_document(incident, history, judgements)
    assert canonical_inputs(incident, history, judgements) == rfc8785.dumps(document)


def with_fact(incident: Incident, name: str) -> Incident:
    raw = incident.model_dump(mode="json")
    if name == "separation":
        raw["relationship"]["separation"] = {"status": "recent"}
    else:
        raw["circumstances"][name] = True
    return Incident.model_validate(raw)


@PROPERTY_SETTINGS
@given(case=scenario(), data=st.data())
def test_an_observed_fact_never_lowers_the_victim_or_any_child(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet], data: st.DataObject
) -> None:
    """Rules v2, rule 1: what the officer saw (or the incident records) only ever adds."""
    incident, judgements, definitions = case
    fact = data.draw(st.sampled_from([*OBSERVED_FACTS, "separation"]))
    before = assess(incident, History.reported(incident), definitions, judgements)
    changed = with_fact(incident, fact)
    after = assess(changed, History.reported(changed), definitions, judgements)
    assert after.victim.score >= before.victim.score
    assert VICTIM_RANK[after.victim.level] >= VICTIM_RANK[before.victim.level]
    assert set(before.victim.marac.criteria) <= set(after.victim.marac.criteria)
    for old, new in zip(before.children, after.children, strict=True):
        assert CHILD_RANK[new.level] >= CHILD_RANK[old.level], (fact, old.person_ref)


@PROPERTY_SETTINGS
@given(case=scenario(), data=st.data())
def test_a_judgement_never_lowers_a_child(
    case: tuple[Incident, tuple[Judgement, ...], DefinitionSet], data: st.DataObject
) -> None:
    """Rules v2, rule 7: a child's judgement raises or confirms, never lowers."""
    incident, judgements, definitions = case
    if not incident.children:
        return
    child = data.draw(st.sampled_from([c.ref for c in incident.children]))
    judged = Judgement(
        level=data.draw(st.sampled_from(CHILD_LEVELS)),
        rationale="Seen at school.",
        by="triage-9",
        at=dt.datetime(2026, 11, 25, 9, tzinfo=dt.UTC),
        subject_ref=child,
    )
    before = assess(incident, History.reported(incident), definitions, judgements)
    after = assess(incident, History.reported(incident), definitions, (*judgements, judged))
    old, new = before.child(child), after.child(child)
    assert CHILD_RANK[new.level] == max(CHILD_RANK[old.level], CHILD_RANK[judged.level])
    assert after.victim == before.victim
