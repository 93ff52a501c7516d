"""The compiled flag engine gives exactly what the straightforward interpreter gave.

:func:`app.flags.engine.evaluate_flags` compiles a rule set once and keeps the compiled
form on the rule set object. These tests check that it gives the same proposals (same
order, pointers, reasons, dedupe keys, due times) and raises the same exceptions as the
interpreter it replaced (``tests/flags/reference_engine.py``), over synthetic incidents
(``triage synth``'s generator, invented data) under every shipped rules version, with
assessments and times varied by hypothesis; and that a compiled form is never served to
another rule set.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json
import pickle
from pathlib import Path
from typing import Any, get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.assessments.pipeline import evaluate
from app.classifier.synth import generate
from app.config import Settings
from app.contract.incident import Incident
from app.contract.levels import PERPETRATOR_MARKERS
from app.flags import Calendar, FlagRuleRegistry, FlagRuleSet, evaluate_flags, parse_rule_set
from app.flags.conditions import AllOf, AnyChild, AnyOf
from app.flags.engine import (
    _COMPILERS,
    _PARTS,
    INCIDENT_ONLY,
    AssessmentView,
    evaluate_view,
    flag_keys,
    parts_read,
)
from app.flags.vocabulary import ChildLevel, VictimLevel
from app.intake.context import ScoringContext
from app.scoring.history import History
from tests.flags.reference_engine import evaluate_flags_reference

HOLIDAYS = Calendar.from_iso_dates(
    non_school_days=["2026-11-23", "2026-12-21", "2027-02-15"],
    non_working_days=["2026-12-25", "2026-12-28", "2027-01-01", "2026-11-30"],
)
CALENDARS = (Calendar(), HOLIDAYS)


def outcome(
    engine: Any,
    incident: Incident,
    assessment: dict[str, Any],
    rules: FlagRuleSet,
    calendar: Calendar,
    now_reference: dt.datetime | None = None,
) -> Any:
    """The proposals (with their JSON form and repr, so that True and 1 differ), or the
    exception's type and message."""
    try:
        proposals = engine(incident, assessment, rules, calendar, now_reference)
    except Exception as exc:  # the exception is what is compared
        return ("raised", type(exc), str(exc))
    return [(p, p.to_dict(), repr(p)) for p in proposals]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[Incident, dict[str, Any]]]:
    """Synthetic incidents, each with its assessment as intake makes it (invented data)."""
    path = Path(tmp_path_factory.mktemp("synth")) / "synth.jsonl"
    generate(80, 23, path)
    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    pairs = []
    for line in path.read_text("utf-8").splitlines():
        incident = Incident.model_validate(json.loads(line)["incident"])
        definitions = context.definition_set(incident.area)
        classifier = context.classifier_policy(incident.area)
        result = evaluate(incident, History.reported(incident), definitions, [], classifier)
        pairs.append((incident, result))
    return pairs


@pytest.fixture(scope="module")
def rule_sets() -> list[FlagRuleSet]:
    return list(FlagRuleRegistry.from_directory().by_key.values())


def test_same_proposals_as_the_interpreter_over_synthetic_incidents(scored, rule_sets):
    raised = 0
    for incident, result in scored:
        serial = {**result, "perpetrator": {**result["perpetrator"], "serial": True}}
        for rules in rule_sets:
            for calendar in CALENDARS:
                for assessment in (result, serial):
                    expected = outcome(
                        evaluate_flags_reference, incident, assessment, rules, calendar
                    )
                    got = outcome(evaluate_flags, incident, assessment, rules, calendar)
                    assert got == expected
                    raised += len(got)
    assert raised > 1000  # the incidents raise flags under every rules version


MOMENTS = st.one_of(
    st.datetimes(
        min_value=dt.datetime(1, 1, 1),
        max_value=dt.datetime(9999, 12, 31, 23, 59),
        timezones=st.just(dt.UTC),
    ),
    st.datetimes(
        min_value=dt.datetime(2026, 1, 1),
        max_value=dt.datetime(2028, 1, 1),
        timezones=st.just(dt.UTC),
    ),
)


@st.composite
def varied(draw: st.DrawFn, pairs: list[tuple[Incident, dict[str, Any]]]) -> Any:
    """One synthetic incident with its assessment and times changed."""
    incident, result = draw(st.sampled_from(pairs))
    assessment = copy.deepcopy(result)
    victim = assessment["victim"]
    victim["level"] = draw(st.sampled_from(get_args(VictimLevel)))
    criteria = draw(st.lists(st.sampled_from(["visible_high_risk", "repeat_marac"]), max_size=2))
    victim["marac"] = {"refer": draw(st.booleans()), "criteria": criteria}
    for child in assessment["children"]:
        child["level"] = draw(st.sampled_from(get_args(ChildLevel)))
    perpetrator = assessment["perpetrator"]
    perpetrator["serial"] = draw(st.booleans())
    perpetrator["markers"] = draw(st.lists(st.sampled_from(PERPETRATOR_MARKERS), max_size=3))
    assessment["classifier"] = draw(
        st.one_of(
            st.none(),
            st.fixed_dictionaries(
                {"elevated": st.booleans(), "band": st.sampled_from([None, "elevated"])}
            ),
        )
    )
    occurred = draw(MOMENTS)
    reported = draw(st.one_of(st.none(), st.just(occurred + dt.timedelta(minutes=30))))
    if reported is not None and reported.year > 9999:  # pragma: no cover - not drawn
        reported = None
    changed = incident.model_copy(update={"occurred_at": occurred, "reported_at": reported})
    now_reference = draw(st.one_of(st.none(), MOMENTS))
    return changed, assessment, draw(st.sampled_from(CALENDARS)), now_reference


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data())
def test_same_proposals_or_exceptions_as_the_interpreter_when_varied(scored, rule_sets, data):
    incident, assessment, calendar, now_reference = data.draw(varied(scored))
    rules = data.draw(st.sampled_from(rule_sets))
    expected = outcome(
        evaluate_flags_reference, incident, assessment, rules, calendar, now_reference
    )
    got = outcome(evaluate_flags, incident, assessment, rules, calendar, now_reference)
    assert got == expected


def test_year_9999_due_times_still_overflow(example_incident, example_assessment, rule_sets):
    late = example_incident.model_copy(
        update={"occurred_at": dt.datetime(9999, 12, 31, 12, tzinfo=dt.UTC), "reported_at": None}
    )
    for rules in rule_sets:
        expected = outcome(evaluate_flags_reference, late, example_assessment, rules, Calendar())
        assert expected[0] == "raised"  # e.g. one working day after 31 December 9999
        assert outcome(evaluate_flags, late, example_assessment, rules, Calendar()) == expected


def _types(proposals: Any) -> list[tuple[str, str, int]]:
    return [(p.type, p.subject_ref, p.priority) for p in proposals]


def test_a_cut_down_copy_with_the_same_hash_is_not_served_the_full_sets_compilation(
    example_incident, example_assessment, default_rules
):
    full = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    assert default_rules.derived  # compiled and kept on the rule set
    # As the what-if cuts rule sets down to the changed rules: same id, version and hash.
    kept = [r for r in default_rules.spec.rules if r.type == "marac_referral"]
    cut = dataclasses.replace(
        default_rules, spec=default_rules.spec.model_copy(update={"rules": kept})
    )
    assert cut.sha256 == default_rules.sha256
    assert not cut.derived
    flags = evaluate_flags(example_incident, example_assessment, cut, Calendar())
    assert [f.type for f in flags] == ["marac_referral"]
    assert len(full) > 1
    assert _types(flags) == _types(
        evaluate_flags_reference(example_incident, example_assessment, cut, Calendar())
    )


def test_a_second_version_is_not_served_the_first_versions_compilation(
    example_incident, example_assessment, default_rules
):
    first = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    document = default_rules.document()
    document["version"] = "99"
    for rule in document["rules"]:
        rule["priority"] = 9
        rule.pop("priority_when", None)
        if rule["type"] == "marac_referral":
            rule["enabled"] = False
    second_rules = parse_rule_set(document)
    second = evaluate_flags(example_incident, example_assessment, second_rules, Calendar())
    assert {f.priority for f in second} == {9}
    assert "marac_referral" not in {f.type for f in second}
    assert {f.rules_version for f in second} == {"99"}
    # And the first version is still served its own.
    again = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    assert again == first
    assert 9 not in {f.priority for f in first}
    assert second == evaluate_flags_reference(
        example_incident, example_assessment, second_rules, Calendar()
    )


def test_a_compiled_rule_set_still_pickles_and_copies_without_its_compilation(
    example_incident, example_assessment, default_rules
):
    flags = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    assert default_rules.derived
    pickled = pickle.loads(pickle.dumps(default_rules))  # noqa: S301 - our own bytes
    for twin in (pickled, copy.deepcopy(default_rules)):
        assert twin == default_rules
        assert not twin.derived  # compiled again on first use
        assert evaluate_flags(example_incident, example_assessment, twin, Calendar()) == flags


def test_every_condition_type_says_which_part_of_the_assessment_it_reads() -> None:
    """``parts_read`` (what the what-if scores for a flag-rules draft) knows every
    condition the engine compiles: a new condition type must be classified, or the
    analysis fails rather than leaving a part unscored."""
    composites = {AnyOf, AllOf, AnyChild}
    classified = set(_PARTS) | set(INCIDENT_ONLY) | composites
    assert classified == set(_COMPILERS)
    assert not set(_PARTS) & set(INCIDENT_ONLY)


def test_the_parts_a_rule_set_reads_follow_its_conditions_and_choices() -> None:
    rules = FlagRuleRegistry.from_directory().get("default-flags@2")

    def only(*ids: str) -> FlagRuleSet:
        spec = rules.spec.model_copy(update={"rules": [r for r in rules.spec.rules if r.id in ids]})
        return dataclasses.replace(rules, spec=spec)

    assert parts_read(only("idva_referral")) == {"victim"}
    assert parts_read(only("operation_encompass")) == frozenset()
    # Its when reads the incident; its priority choices read the victim, the perpetrator
    # and (inside any_child) the children.
    assert parts_read(only("perpetrator_action_police")) == {"victim", "perpetrator", "children"}
    assert parts_read(only()) == frozenset()
    assert {"victim", "children", "perpetrator"} <= parts_read(rules)


def test_flag_keys_are_the_keys_and_types_of_the_proposals(scored, rule_sets):
    """``flag_keys`` (the what-if's comparison) names exactly the flags the engine raises,
    for every rule set at once, on the same facts."""
    found = 0
    for incident, result in scored:
        serial = {**result, "perpetrator": {**result["perpetrator"], "serial": True}}
        for assessment in (result, serial):
            view = AssessmentView.read(assessment, incident)
            expected = [
                {p.dedupe_key: p.type for p in evaluate_view(incident, view, rules, Calendar())}
                for rules in rule_sets
            ]
            assert flag_keys(incident, view, rule_sets) == expected
            found += sum(len(keys) for keys in expected)
    assert found > 1000
