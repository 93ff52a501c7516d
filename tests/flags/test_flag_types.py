"""Each default flag type is raised when its contract condition holds, and not otherwise.

Source of each condition: docs/contract.md "Flags (who must do what, by when)". The quiet
case (conftest `Case`) is reported on Tuesday 17 November 2026 at 10:00 GMT, so one
working day is Wednesday 17:00Z, the next school day Wednesday 08:30Z and the same day
Tuesday 23:59Z. All data is invented.
"""

from __future__ import annotations

import datetime as dt

import pytest

from app.flags import Pointer


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


NEXT_WORKING_DAY = utc("2026-11-18T17:00:00Z")
SAME_DAY = utc("2026-11-17T23:59:00Z")
NEXT_SCHOOL_DAY = utc("2026-11-18T08:30:00Z")


def summary(flags):
    return [(f.agency, f.subject_ref, f.subject_kind, f.priority, f.due_at) for f in flags]


def test_quiet_incident_raises_no_flags(case, default_rules):
    assert case.flags(default_rules) == []


# -- marac_referral ---------------------------------------------------------------------


def test_marac_referral_raised_when_marac_refer_citing_each_criterion(case, default_rules):
    case.victim("high", marac=["visible_high_risk", "repeat_marac"])
    flags = case.raised(default_rules, "marac_referral")
    assert summary(flags) == [("marac", "v1", "victim", 1, NEXT_WORKING_DAY)]
    assert flags[0].because == (
        Pointer.of("trigger", rule="visible_high_risk"),
        Pointer.of("trigger", rule="repeat_marac"),
    )


def test_marac_referral_not_raised_for_high_victim_without_marac_refer(case, default_rules):
    assert case.victim("high", triggers=("red_flag",)).raised(default_rules, "marac_referral") == []


# -- idva_referral ----------------------------------------------------------------------


def test_idva_referral_raised_for_high_victim(case, default_rules):
    flags = case.victim("high").raised(default_rules, "idva_referral")
    assert summary(flags) == [("idva", "v1", "victim", 1, NEXT_WORKING_DAY)]


@pytest.mark.parametrize("level", ["standard", "medium"])
def test_idva_referral_not_raised_below_high(case, default_rules, level):
    assert case.victim(level).raised(default_rules, "idva_referral") == []


# -- children_social_care_referral ------------------------------------------------------


def test_csc_referral_for_severe_child_is_due_the_same_day(case, default_rules):
    flags = case.child("c1", level="severe").raised(default_rules, "children_social_care_referral")
    assert summary(flags) == [("csc", "c1", "child", 1, SAME_DAY)]
    assert flags[0].dedupe_key == "children_social_care_referral:c1:level=severe"
    assert "s.47" in flags[0].action


def test_csc_referral_for_serious_child_is_due_the_next_working_day(case, default_rules):
    flags = case.child("c1", level="serious").raised(default_rules, "children_social_care_referral")
    assert summary(flags) == [("csc", "c1", "child", 2, NEXT_WORKING_DAY)]
    assert flags[0].because == (Pointer.of("child_level", person_ref="c1", level="serious"),)
    assert "s.17" in flags[0].action


def test_csc_referral_raised_per_child(case, default_rules):
    case.child("c1", level="serious").child("c2", level="moderate").child("c3", level="severe")
    flags = case.raised(default_rules, "children_social_care_referral")
    assert sorted(f.subject_ref for f in flags) == ["c1", "c3"]


@pytest.mark.parametrize("level", ["moderate", "moderate_to_serious"])
def test_csc_referral_not_raised_below_serious(case, default_rules, level):
    assert (
        case.child("c1", level=level).raised(default_rules, "children_social_care_referral") == []
    )


# -- early_help_offer -------------------------------------------------------------------


def test_early_help_offer_raised_for_moderate_to_serious_child(case, default_rules):
    flags = case.child("c1", level="moderate_to_serious").raised(default_rules, "early_help_offer")
    assert summary(flags) == [("early_help", "c1", "child", 3, utc("2026-11-24T17:00:00Z"))]


@pytest.mark.parametrize("level", ["moderate", "serious", "severe"])
def test_early_help_offer_not_raised_for_other_levels(case, default_rules, level):
    assert case.child("c1", level=level).raised(default_rules, "early_help_offer") == []


# -- operation_encompass ----------------------------------------------------------------

SCHOOL = {"name": "Invented Primary", "urn": "100123"}


@pytest.mark.parametrize(
    ("date_of_birth", "age"),
    [("2022-11-17", 4), ("2017-03-01", 9), ("2010-11-17", 16), ("2010-11-18", 15)],
)
def test_operation_encompass_raised_for_school_age_child_with_school(
    case, default_rules, date_of_birth, age
):
    case.child("c1", date_of_birth=date_of_birth, school=SCHOOL)
    flags = case.raised(default_rules, "operation_encompass")
    assert summary(flags) == [("school", "c1", "child", 2, NEXT_SCHOOL_DAY)]
    assert Pointer.of("child_age", person_ref="c1", age_years=age) in flags[0].because
    assert "Invented Primary" not in flags[0].reason  # the school's name is never quoted


@pytest.mark.parametrize("date_of_birth", ["2022-11-18", "2009-11-17"])  # aged 3 and 17
def test_operation_encompass_not_raised_outside_school_age(case, default_rules, date_of_birth):
    case.child("c1", date_of_birth=date_of_birth, school=SCHOOL)
    assert case.raised(default_rules, "operation_encompass") == []


@pytest.mark.parametrize("school", [None, {}, {"name": None, "urn": None}])
def test_operation_encompass_not_raised_without_a_school(case, default_rules, school):
    details = {} if school is None else {"school": school}
    case.child("c1", **details)
    assert case.raised(default_rules, "operation_encompass") == []


@pytest.mark.parametrize("school", [{"urn": "100123"}, {"name": "Invented Primary"}])
def test_operation_encompass_accepts_a_school_by_urn_or_name(case, default_rules, school):
    case.child("c1", school=school)
    assert len(case.raised(default_rules, "operation_encompass")) == 1


def test_operation_encompass_raised_for_child_with_school_and_unknown_age(case, default_rules):
    case.child("c1", date_of_birth=None, school=SCHOOL)
    flags = case.raised(default_rules, "operation_encompass")
    assert len(flags) == 1
    assert "c1: age not recorded" in flags[0].reason


def test_operation_encompass_not_raised_for_unborn_child(case, default_rules):
    case.child("c1", unborn=True)
    assert case.raised(default_rules, "operation_encompass") == []


# -- child_not_spoken_to ----------------------------------------------------------------


def test_child_not_spoken_to_raised_when_recorded_not_spoken_to(case, default_rules):
    case.child("c1", present=True, spoken_to_by_officer=False)
    flags = case.raised(default_rules, "child_not_spoken_to")
    assert summary(flags) == [("police", "c1", "child", 2, NEXT_WORKING_DAY)]
    assert "c1: spoken_to_by_officer = no" in flags[0].reason


def test_child_not_spoken_to_raised_when_not_recorded_either_way(case, default_rules):
    case.child("c1", present=True)
    flags = case.raised(default_rules, "child_not_spoken_to")
    assert len(flags) == 1
    assert "c1: spoken_to_by_officer not recorded" in flags[0].reason


@pytest.mark.parametrize(
    "details",
    [
        {"present": True, "spoken_to_by_officer": True},
        {"present": False, "spoken_to_by_officer": False},
        {"spoken_to_by_officer": False},  # presence not recorded
    ],
)
def test_child_not_spoken_to_not_raised_otherwise(case, default_rules, details):
    case.child("c1", **details)
    assert case.raised(default_rules, "child_not_spoken_to") == []


# -- perpetrator_action -----------------------------------------------------------------


@pytest.mark.parametrize("level", ["medium", "high"])
def test_perpetrator_action_raised_for_police_when_victim_medium_or_high(
    case, default_rules, level
):
    flags = case.victim(level).raised(default_rules, "perpetrator_action")
    assert summary(flags) == [("police", "p1", "perpetrator", 2, NEXT_WORKING_DAY)]
    assert "perpetrator-directed action" in flags[0].action


def test_perpetrator_action_raised_for_serial_perpetrator_of_standard_victim(case, default_rules):
    flags = case.serial().raised(default_rules, "perpetrator_action")
    assert [f.agency for f in flags] == ["police"]


@pytest.mark.parametrize(
    "path",
    ["perpetrator_history.prior_custody", "perpetrator_history.breach_of_conditional_release"],
)
def test_perpetrator_action_also_for_probation_when_supervision_likely(case, default_rules, path):
    flags = case.victim("medium").set(path, True).raised(default_rules, "perpetrator_action")
    assert sorted((f.agency, f.dedupe_key) for f in flags) == [
        ("police", "perpetrator_action:p1:agency=police"),
        ("probation", "perpetrator_action:p1:agency=probation"),
    ]


def test_perpetrator_action_not_raised_for_standard_victim_and_non_serial(case, default_rules):
    case.set("perpetrator_history.prior_custody", True)
    assert case.raised(default_rules, "perpetrator_action") == []


def test_perpetrator_action_not_for_probation_for_civil_orders_alone(case, default_rules):
    case.victim("high").set("perpetrator_history.active_orders", [{"type": "non_molestation"}])
    assert [f.agency for f in case.raised(default_rules, "perpetrator_action")] == ["police"]


# -- serial_perpetrator -----------------------------------------------------------------


def test_serial_perpetrator_raised_for_police(case, default_rules):
    flags = case.serial().raised(default_rules, "serial_perpetrator")
    assert summary(flags) == [("police", "p1", "perpetrator", 2, NEXT_WORKING_DAY)]


def test_serial_perpetrator_not_raised_when_not_serial(case, default_rules):
    assert case.victim("high").raised(default_rules, "serial_perpetrator") == []


# -- separation_escalation --------------------------------------------------------------


@pytest.mark.parametrize("status", ["recent", "planned", "perceived"])
def test_separation_escalation_raised_for_recent_planned_or_perceived(case, default_rules, status):
    flags = case.set("relationship.separation", {"status": status}).raised(
        default_rules, "separation_escalation"
    )
    assert summary(flags) == [("idva", "v1", "victim", 2, NEXT_WORKING_DAY)]
    assert flags[0].because == (
        Pointer.of("incident_field", path="relationship.separation.status", value=status),
    )


def test_separation_escalation_raised_for_separation_in_past_year_answer(case, default_rules):
    flags = case.answers(separation_past_year="yes").raised(default_rules, "separation_escalation")
    assert flags[0].because == (Pointer.of("item", id="separation_past_year", answer="yes"),)


@pytest.mark.parametrize("status", ["none", "historic"])
def test_separation_escalation_not_raised_for_none_or_historic(case, default_rules, status):
    case.set("relationship.separation", {"status": status}).answers(separation_past_year="unknown")
    assert case.raised(default_rules, "separation_escalation") == []


# -- strangulation_medical --------------------------------------------------------------


def test_strangulation_medical_raised_same_day_for_answer_yes(case, default_rules):
    flags = case.answers(strangulation="yes").raised(default_rules, "strangulation_medical")
    assert summary(flags) == [("health", "v1", "victim", 1, SAME_DAY)]


def test_strangulation_medical_raised_for_circumstance_and_cites_both(case, default_rules):
    case.answers(strangulation="yes").set("circumstances.strangulation", True)
    flags = case.raised(default_rules, "strangulation_medical")
    assert flags[0].because == (
        Pointer.of("item", id="strangulation", answer="yes"),
        Pointer.of("incident_field", path="circumstances.strangulation", value=True),
    )


@pytest.mark.parametrize("answer", ["no", "unknown", "not_asked"])
def test_strangulation_medical_not_raised_otherwise(case, default_rules, answer):
    case.answers(strangulation=answer).set("circumstances.strangulation", False)
    assert case.raised(default_rules, "strangulation_medical") == []


# -- pregnancy_health -------------------------------------------------------------------


def test_pregnancy_health_raised_for_pregnancy_or_recent_birth(case, default_rules):
    flags = case.answers(pregnant_or_recent_birth="yes").raised(default_rules, "pregnancy_health")
    assert summary(flags) == [("health", "v1", "victim", 2, NEXT_WORKING_DAY)]


def test_pregnancy_health_raised_for_an_unborn_child(case, default_rules):
    flags = case.child("c1", unborn=True).raised(default_rules, "pregnancy_health")
    assert [f.subject_ref for f in flags] == ["v1"]
    assert flags[0].because == (
        Pointer.of("child_field", person_ref="c1", field="unborn", value=True),
    )


def test_pregnancy_health_not_raised_otherwise(case, default_rules):
    case.answers(pregnant_or_recent_birth="no").child("c1")
    assert case.raised(default_rules, "pregnancy_health") == []


# -- victim_responsibility_plan ---------------------------------------------------------


def test_victim_responsibility_plan_raised_for_written_agreement(case, default_rules):
    case.set("safety_plan.written_agreement_with_victim", True)
    flags = case.raised(default_rules, "victim_responsibility_plan")
    assert summary(flags) == [("csc", "v1", "victim", 2, NEXT_WORKING_DAY)]
    assert "perpetrator-focused safety plan" in flags[0].action


@pytest.mark.parametrize("value", [False, None])
def test_victim_responsibility_plan_not_raised_without_written_agreement(
    case, default_rules, value
):
    case.set("safety_plan.written_agreement_with_victim", value)
    assert case.raised(default_rules, "victim_responsibility_plan") == []


# -- long_term_review -------------------------------------------------------------------


@pytest.mark.parametrize("level", ["medium", "high"])
def test_long_term_review_raised_at_3_and_12_months(case, default_rules, level):
    flags = case.victim(level).raised(default_rules, "long_term_review")
    assert [(f.agency, f.due_at, f.dedupe_key) for f in flags] == [
        ("idva", utc("2027-02-17T09:00:00Z"), "long_term_review:v1:review_at_months=3"),
        ("idva", utc("2027-11-17T09:00:00Z"), "long_term_review:v1:review_at_months=12"),
    ]


def test_long_term_review_addressed_to_csc_when_a_child_is_serious(case, default_rules):
    flags = (
        case.victim("medium").child("c1", level="serious").raised(default_rules, "long_term_review")
    )
    assert [f.agency for f in flags] == ["csc", "csc"]
    assert Pointer.of("agency_choice", agency="csc") in flags[0].because


def test_long_term_review_not_raised_for_standard_victim(case, default_rules):
    assert case.child("c1", level="severe").raised(default_rules, "long_term_review") == []


# -- child_recovery_support -------------------------------------------------------------


@pytest.mark.parametrize("level", ["serious", "severe"])
def test_child_recovery_support_raised_for_serious_and_severe(case, default_rules, level):
    flags = case.child("c1", level=level).raised(default_rules, "child_recovery_support")
    assert summary(flags) == [("health", "c1", "child", 3, utc("2026-12-01T17:00:00Z"))]


def test_child_recovery_support_not_raised_below_serious_or_for_unborn(case, default_rules):
    case.child("c1", level="moderate_to_serious").child("c2", level="severe", unborn=True)
    assert case.raised(default_rules, "child_recovery_support") == []


# -- classifier_elevated ----------------------------------------------------------------


def test_classifier_elevated_raised_for_triage(case, default_rules):
    flags = case.classifier(elevated=True, band="high").raised(default_rules, "classifier_elevated")
    assert summary(flags) == [("triage", "v1", "victim", 2, NEXT_WORKING_DAY)]
    assert flags[0].because == (Pointer.of("classifier", elevated=True, band="high"),)


def test_classifier_elevated_not_raised_when_not_elevated_or_absent(case, default_rules):
    assert case.raised(default_rules, "classifier_elevated") == []
    assert case.classifier(elevated=False).raised(default_rules, "classifier_elevated") == []
