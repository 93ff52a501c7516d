"""The flag engine over the contract's example incident, and its guarantees.

The example incident (conftest, invented data) is reported on Friday 20 November 2026 at
22:31 GMT: one working day is Monday 23 November 17:00, the next school day Monday
08:30, the same day Friday 23:59.
"""

from __future__ import annotations

import copy
import dataclasses
import datetime as dt
import json

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from app.contract.incident import Incident
from app.flags import (
    RULES_DIR,
    AssessmentShapeError,
    Calendar,
    Pointer,
    evaluate_flags,
    parse_rule_set,
)


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


MONDAY_COB = utc("2026-11-23T17:00:00Z")
FRIDAY_END = utc("2026-11-20T23:59:00Z")

EXPECTED_EXAMPLE_FLAGS = [
    # (type, agency, subject_ref, subject_kind, priority, due_at), in output order
    ("children_social_care_referral", "csc", "c1", "child", 1, FRIDAY_END),
    ("children_social_care_referral", "csc", "c2", "child", 1, FRIDAY_END),
    ("strangulation_medical", "health", "v1", "victim", 1, FRIDAY_END),
    ("idva_referral", "idva", "v1", "victim", 1, MONDAY_COB),
    ("marac_referral", "marac", "v1", "victim", 1, MONDAY_COB),
    ("operation_encompass", "school", "c1", "child", 2, utc("2026-11-23T08:30:00Z")),
    ("child_not_spoken_to", "police", "c1", "child", 2, MONDAY_COB),
    ("perpetrator_action", "police", "p1", "perpetrator", 2, MONDAY_COB),
    ("pregnancy_health", "health", "v1", "victim", 2, MONDAY_COB),
    ("separation_escalation", "idva", "v1", "victim", 2, MONDAY_COB),
    ("serial_perpetrator", "police", "p1", "perpetrator", 2, MONDAY_COB),
    ("child_recovery_support", "health", "c1", "child", 3, utc("2026-12-04T17:00:00Z")),
    # + 3 and + 12 months fall on Saturdays: rolled forward to Monday 09:00 GMT.
    ("long_term_review", "csc", "v1", "victim", 4, utc("2027-02-22T09:00:00Z")),
    ("long_term_review", "csc", "v1", "victim", 4, utc("2027-11-22T09:00:00Z")),
]


def test_example_incident_raises_exactly_the_expected_flags(
    example_incident, example_assessment, default_rules
):
    flags = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    assert [
        (f.type, f.agency, f.subject_ref, f.subject_kind, f.priority, f.due_at) for f in flags
    ] == EXPECTED_EXAMPLE_FLAGS


def test_example_incident_flags_carry_rules_version_hash_and_stable_keys(
    example_incident, example_assessment, default_rules
):
    flags = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    assert {(f.rules_id, f.rules_version, f.rules_sha256) for f in flags} == {
        ("default-flags", "1", default_rules.sha256)
    }
    assert [f.dedupe_key for f in flags] == [
        "children_social_care_referral:c1:level=severe",
        "children_social_care_referral:c2:level=severe",
        "strangulation_medical:v1",
        "idva_referral:v1",
        "marac_referral:v1",
        "operation_encompass:c1",
        "child_not_spoken_to:c1",
        "perpetrator_action:p1:agency=police",
        "pregnancy_health:v1",
        "separation_escalation:v1",
        "serial_perpetrator:p1",
        "child_recovery_support:c1",
        "long_term_review:v1:review_at_months=3",
        "long_term_review:v1:review_at_months=12",
    ]
    assert all(f.due_at.tzinfo is dt.UTC for f in flags)


def test_example_incident_explanations_point_at_the_assessment(
    example_incident, example_assessment, default_rules
):
    flags = {
        f.dedupe_key: f
        for f in evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    }
    assert flags["marac_referral:v1"].because == (
        Pointer.of("trigger", rule="visible_high_risk"),
        Pointer.of("trigger", rule="potential_escalation"),
    )
    assert flags["marac_referral:v1"].reason == (
        "MARAC referral: trigger visible_high_risk fired; trigger potential_escalation fired"
    )
    assert [p.to_dict() for p in flags["strangulation_medical:v1"].because] == [
        {"kind": "item", "id": "strangulation", "answer": "yes"},
        {"kind": "incident_field", "path": "circumstances.strangulation", "value": True},
    ]
    assert flags["pregnancy_health:v1"].because == (
        Pointer.of("item", id="pregnant_or_recent_birth", answer="yes"),
        Pointer.of("child_field", person_ref="c2", field="unborn", value=True),
    )
    assert flags["operation_encompass:c1"].because == (
        Pointer.of("child_field", person_ref="c1", field="unborn", value=False),
        Pointer.of("child_field", person_ref="c1", field="has_school", value=True),
        Pointer.of("child_age", person_ref="c1", age_years=7),
    )
    assert flags["long_term_review:v1:review_at_months=3"].because == (
        Pointer.of("victim_level", person_ref="v1", level="high"),
        Pointer.of("agency_choice", agency="csc"),
        Pointer.of("child_level", person_ref="c1", level="severe"),
        Pointer.of("child_level", person_ref="c2", level="severe"),
    )


def test_reasons_and_pointers_never_carry_personal_data(
    example_incident, example_assessment, default_rules
):
    flags = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    text = json.dumps([f.to_dict() for f in flags])
    for personal in ("Invented Primary", "100123", "Invented account", "2019-05-11", "PPN-"):
        assert personal not in text


def test_to_dict_is_json_ready_with_utc_times(example_incident, example_assessment, default_rules):
    flag = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())[0]
    as_dict = json.loads(json.dumps(flag.to_dict()))
    assert as_dict["due_at"] == "2026-11-20T23:59:00Z"
    assert as_dict["because"] == [{"kind": "child_level", "person_ref": "c1", "level": "severe"}]
    assert set(as_dict) == {f.name for f in dataclasses.fields(flag)}


def test_proposals_are_frozen(example_incident, example_assessment, default_rules):
    flag = evaluate_flags(example_incident, example_assessment, default_rules, Calendar())[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        flag.priority = 9  # type: ignore[misc]
    assert hash(flag) == hash(dataclasses.replace(flag))


def test_a_long_reason_is_cut_but_every_pointer_is_kept(case, default_rules):
    case.victim("high")
    for i in range(45):
        case.child(f"child-number-{i:02d}", level="serious")
    review = case.raised(default_rules, "long_term_review")[0]
    assert len(review.reason) == 1000
    assert review.reason.endswith("…")
    assert len(review.because) == 2 + 45


# -- base time --------------------------------------------------------------------------


def test_due_times_count_from_occurred_at_when_not_reported(
    example_incident_data, example_assessment, default_rules
):
    data = example_incident_data
    del data["reported_at"]
    data["occurred_at"] = "2026-11-19T10:00:00Z"  # Thursday
    flags = evaluate_flags(
        Incident.model_validate(data), example_assessment, default_rules, Calendar()
    )
    due = {f.dedupe_key: f.due_at for f in flags}
    assert due["operation_encompass:c1"] == utc("2026-11-20T08:30:00Z")
    assert due["marac_referral:v1"] == utc("2026-11-20T17:00:00Z")


def test_explicit_now_reference_overrides_the_incident_times(
    example_incident, example_assessment, default_rules
):
    revised_at = utc("2026-11-24T12:00:00Z")  # Tuesday: a revision received later
    flags = evaluate_flags(
        example_incident, example_assessment, default_rules, Calendar(), now_reference=revised_at
    )
    due = {f.dedupe_key: f.due_at for f in flags}
    assert due["operation_encompass:c1"] == utc("2026-11-25T08:30:00Z")
    assert due["strangulation_medical:v1"] == utc("2026-11-24T23:59:00Z")


def test_configured_holidays_move_the_example_due_times(
    example_incident, example_assessment, default_rules
):
    calendar = Calendar.from_iso_dates(
        non_school_days=["2026-11-23"], non_working_days=["2026-11-24"]
    )
    due = {
        f.dedupe_key: f.due_at
        for f in evaluate_flags(example_incident, example_assessment, default_rules, calendar)
    }
    assert due["operation_encompass:c1"] == utc("2026-11-25T08:30:00Z")  # Mon INSET, Tue holiday
    assert due["marac_referral:v1"] == MONDAY_COB  # Monday is still a working day


@pytest.mark.parametrize(
    ("reported_at", "school_day", "working_day", "same_day"),
    [
        # Friday 23:00 GMT → Monday.
        ("2026-11-20T23:00:00Z", "2026-11-23T08:30Z", "2026-11-23T17:00Z", "2026-11-20T23:59Z"),
        # Saturday 24 Oct 2026 23:30 BST, clocks go back on Sunday → Monday in GMT.
        ("2026-10-24T22:30:00Z", "2026-10-26T08:30Z", "2026-10-26T17:00Z", "2026-10-24T22:59Z"),
        # Friday 27 Mar 2026 21:00 GMT, clocks go forward on Sunday → Monday in BST.
        ("2026-03-27T21:00:00Z", "2026-03-30T07:30Z", "2026-03-30T16:00Z", "2026-03-27T23:59Z"),
    ],
)
def test_weekend_and_clock_change_incidents_are_due_on_monday(
    case, default_rules, reported_at, school_day, working_day, same_day
):
    case.set("occurred_at", reported_at).set("reported_at", reported_at)
    case.victim("high", marac=["visible_high_risk"])
    case.child("c1", level="severe", school={"urn": "100123"})
    due = {f.dedupe_key: f.due_at for f in case.flags(default_rules)}
    assert due["operation_encompass:c1"] == utc(school_day)
    assert due["marac_referral:v1"] == utc(working_day)
    assert due["children_social_care_referral:c1:level=severe"] == utc(same_day)


# -- revisions and dedupe ---------------------------------------------------------------


def test_revision_raising_a_child_to_severe_adds_only_the_new_flags(case, default_rules):
    first = case.victim("medium").child("c1", level="serious").flags(default_rules)
    case.assessment["children"][0]["level"] = "severe"
    second = case.flags(default_rules)
    new_keys = {f.dedupe_key for f in second} - {f.dedupe_key for f in first}
    assert new_keys == {"children_social_care_referral:c1:level=severe"}


def test_a_new_rules_version_keeps_the_dedupe_keys(
    example_incident, example_assessment, default_rules, registry
):
    area = registry.get("example-area-flags@1")
    keys = {
        f.dedupe_key
        for f in evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    }
    area_keys = {
        f.dedupe_key for f in evaluate_flags(example_incident, example_assessment, area, Calendar())
    }
    assert keys == area_keys


def test_a_disabled_rule_raises_nothing(case, default_rules):
    data = yaml.safe_load((RULES_DIR / "default-flags@1.yaml").read_text(encoding="utf-8"))
    next(r for r in data["rules"] if r["id"] == "idva_referral")["enabled"] = False
    rules = parse_rule_set(data)
    case.victim("high")
    assert "idva_referral" in {f.type for f in case.flags(default_rules)}
    assert "idva_referral" not in {f.type for f in case.flags(rules)}
    assert rules.sha256 != default_rules.sha256


# -- the assessment must be this incident's ---------------------------------------------


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda a: a["victim"].update(person_ref="v9"), "victim.person_ref"),
        (lambda a: a["perpetrator"].update(person_ref="v1"), "perpetrator.person_ref"),
        (lambda a: a["children"].pop(), "children"),
        (lambda a: a["children"].append(dict(a["children"][0])), "children"),
        (lambda a: a["victim"].pop("level"), "victim.level"),
        (lambda a: a["victim"].update(level="very_high"), "victim.level"),
        (lambda a: a["children"][0].update(level="high"), "children.0.level"),
        (lambda a: a.pop("perpetrator"), "perpetrator"),
    ],
)
def test_an_assessment_of_another_shape_or_incident_is_refused(
    example_incident, example_assessment, default_rules, change, message
):
    assessment = example_assessment
    change(assessment)
    with pytest.raises(AssessmentShapeError, match=message):
        evaluate_flags(example_incident, assessment, default_rules, Calendar())


def test_the_engine_does_not_change_its_inputs(example_incident, example_assessment, default_rules):
    assessment_before = copy.deepcopy(example_assessment)
    before = example_incident.model_dump()
    evaluate_flags(example_incident, example_assessment, default_rules, Calendar())
    assert example_assessment == assessment_before
    assert example_incident.model_dump() == before


# -- determinism ------------------------------------------------------------------------

ANSWERS = ["strangulation", "pregnant_or_recent_birth", "separation_past_year"]


@settings(max_examples=60, deadline=None)
@given(
    victim_level=st.sampled_from(["standard", "medium", "high"]),
    marac=st.booleans(),
    serial=st.booleans(),
    answers=st.fixed_dictionaries(
        {item: st.sampled_from(["yes", "no", "unknown", "not_asked"]) for item in ANSWERS}
    ),
    children=st.lists(
        st.tuples(
            st.sampled_from(["moderate", "moderate_to_serious", "serious", "severe"]),
            st.booleans(),  # present
            st.sampled_from([True, False, None]),  # spoken to
            st.booleans(),  # has a school
            st.integers(min_value=0, max_value=18),  # age
        ),
        max_size=4,
    ),
    reported_at=st.datetimes(
        min_value=dt.datetime(2025, 1, 1),
        # Not later than today: the children's dates of birth are worked out from it.
        max_value=dt.datetime(2026, 11, 1),
        timezones=st.just(dt.UTC),
    ),
)
def test_same_input_gives_the_same_ordered_output(
    case_class, default_rules, victim_level, marac, serial, answers, children, reported_at
):
    case = case_class()
    case.victim(victim_level, marac=["visible_high_risk"] if marac else None).serial(serial)
    case.answers(**answers)
    case.set("occurred_at", reported_at.isoformat()).set("reported_at", reported_at.isoformat())
    for i, (level, present, spoken, school, age) in enumerate(children):
        details = {"present": present, "spoken_to_by_officer": spoken}
        if school:
            details["school"] = {"urn": "100123"}
        born = dt.date(reported_at.year - age, 1, 1).isoformat()
        case.child(f"c{i + 1}", level=level, date_of_birth=born, **details)
    first = case.flags(default_rules)
    reversed_persons = copy.deepcopy(case)
    reversed_persons.incident["persons"].reverse()
    reversed_persons.assessment["children"].reverse()
    assert case.flags(default_rules) == first
    assert reversed_persons.flags(default_rules) == first
    order = [(f.priority, f.due_at, f.type, f.subject_ref) for f in first]
    assert order == sorted(order)
    assert len({f.dedupe_key for f in first}) == len(first)
    assert all(f.due_at >= reported_at for f in first)
