"""Acceptance scenarios for the default rules, version 2 (docs/rules.md).

An independent reading of docs/rules.md, written without looking at the implementation: each
test posts one invented incident through POST /v1/incidents and checks what the
specification says, through the API only. Every test runs on SQLite and PostgreSQL (the
``backend`` parametrisation of tests/conftest.py).

Each test names, in its docstring, the numbered rules of docs/rules.md it checks. Where the
specification is ambiguous, a comment at the test says which reading was chosen ("READING:")
— the reading a safeguarding practitioner would expect.

Readings that apply throughout:

- "Everything not named here is as in version 1": the v1 flags (docs/contract.md "Flags"; default
  flags @1) still fire as before, so each expected flag set includes them.
- ``hours: N`` is N hours of elapsed time after ``reported_at`` (UTC arithmetic), not N
  hours on the London wall clock: across a clock change a 4-hour deadline is still 4 hours.
- "the incident date" (rule 12) is the London calendar date of ``occurred_at``.
- The effective answer's origin is the item's ``source`` (``answer``, ``observed``,
  ``recorded``).

Times: due times are worked out by hand on the Europe/London calendar. 2026: BST starts
Sunday 29 March (01:00 GMT → 02:00 BST) and ends Sunday 25 October (02:00 BST → 01:00 GMT).
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyMaker, example_incident
from tests.support.v2cases import (
    RIC_ITEMS,
    TUESDAY_10,
    Outcome,
    assert_due,
    assert_victim,
    child,
    incident,
    item_source,
    school,
    submit,
)

Pairs = set[tuple[str, str]]


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


@pytest.fixture
def post(client: TestClient, submitter: dict[str, str], triage: dict[str, str]) -> Any:
    def _post(body: dict[str, Any]) -> Outcome:
        return submit(client, submitter, triage, body)

    return _post


def unknown_items(n: int, *, first: tuple[str, ...] = ()) -> tuple[str, ...]:
    """``n`` item ids, ``first`` first, then the checklist's items in order."""
    rest = [i for i in RIC_ITEMS if i not in first]
    return (*first, *rest)[:n]


# =========================================================================== victim


def test_red_flag_high_victim_is_referred_to_marac_on_red_flag_high(post: Any) -> None:
    """Rules 2, 4, 8 (and 14): strangulation, pregnancy and separation last month.

    Issue case: v1 graded her `high` by the red-flag rule (1 critical + 2 aggravating) but
    did not refer her: score 3 < 14, no history. v2: MARAC criterion `red_flag_high`.
    """
    o = post(
        incident(
            yes=("strangulation", "pregnant_or_recent_birth", "separation_past_year"),
            relationship={
                "type": "ex_intimate_partner",
                "separation": {"status": "recent", "date": "2026-10-15"},
            },
        )
    )
    assert_victim(o, level="high", score=3, unknown_count=0, marac={"red_flag_high"})
    assert "red_flag" in o.fired()
    assert o.pairs() == {
        ("marac_referral", "v1"),
        ("idva_referral", "v1"),
        ("perpetrator_action", "p1"),
        ("separation_escalation", "v1"),
        ("strangulation_medical", "v1"),
        ("pregnancy_health", "v1"),
        ("long_term_review", "v1"),
    }
    assert o.one("marac_referral", "v1")["agency"] == "marac"
    action = o.one("perpetrator_action", "p1")
    assert (action["agency"], action["priority"]) == ("police", 1)  # victim high
    # No children: the reviews go to the IDVA (rule 15), one at 3 and one at 12 months.
    assert [f["agency"] for f in o.of("long_term_review", "v1")] == ["idva", "idva"]
    assert_due(o.one("strangulation_medical", "v1"), "2026-11-18T10:00:00Z")  # 24 h


def test_observed_strangulation_by_phone_with_21_unknowns_and_her_own_view_high(
    post: Any,
) -> None:
    """Rules 1, 2, 3, 5, 11, 16: strangulation seen by the officer; 21 of 24 answers unknown
    (phone, interpreter needed); the victim rates her own risk high.

    v1: `standard` and no task. v2: the observed strangulation is an effective `yes`
    (source `observed`), so the red flag gives `medium` (no aggravating item is a `yes`);
    the victim's view gives at least `medium` too; 20 items stay unknown (21 minus the observed
    one) → `incomplete_assessment`, which does not change the level, and a
    `complete_risk_assessment` task due 24 hours after the report.
    """
    answered = {"very_frightened": "yes", "afraid_of_further_harm": "yes", "isolated": "no"}
    answer_map = {i: answered.get(i, "unknown") for i in RIC_ITEMS}
    assert list(answer_map.values()).count("unknown") == 21
    o = post(
        incident(
            answer_map=answer_map,
            checklist={"answered_by": "victim", "mode": "phone"},
            victim={"interpreter_needed": True},
            circumstances={"strangulation": True, "physical_violence": True},
            officer={"victim_perception": "high"},
        )
    )
    assert_victim(o, level="medium", score=3, unknown_count=20)
    assert {"red_flag", "victim_perception", "incomplete_assessment"} <= o.fired()
    item = o.item("strangulation")
    assert item["points"] == 1  # counted as yes
    assert "unknown" in item.values()  # "the item shows both": her own answer stays visible
    assert item_source(item) == "observed"
    assert o.pairs() == {
        ("perpetrator_action", "p1"),
        ("strangulation_medical", "v1"),
        ("complete_risk_assessment", "v1"),
        ("long_term_review", "v1"),
    }
    task = o.one("complete_risk_assessment", "v1")
    assert task["agency"] == "police"
    assert_due(task, "2026-11-18T10:00:00Z")
    assert_due(o.one("strangulation_medical", "v1"), "2026-11-18T10:00:00Z")
    # Priority deliberately not asserted here: strangulation is not one of the perpetrator
    # markers of docs/contract.md, so rule 9 read literally gives 3, but v1's own strangulation
    # action calls it "a high-harm marker" (see the report; test_perpetrator_action_priority).


def test_perceived_separation_threat_to_kill_and_stalking_is_high_and_referred(
    post: Any,
) -> None:
    """Rules 1, 2, 4, 8, 14: a perceived separation (he believes she is leaving; she answered
    `no` to "separated in the last year"), a threat to kill and stalking.

    v1: `medium` (1 critical + 1 aggravating). v2: the recorded separation status is an
    effective `yes` whatever she answered (source `recorded`) → 1 critical + 2 aggravating →
    `high` by the red-flag rule → MARAC on `red_flag_high`.
    """
    o = post(
        incident(
            yes=("threat_to_kill", "stalking_harassment"),
            relationship={"type": "intimate_partner", "separation": {"status": "perceived"}},
        )
    )
    assert_victim(o, level="high", score=3, unknown_count=0, marac={"red_flag_high"})
    item = o.item("separation_past_year")
    assert item["points"] == 1
    assert "no" in item.values()  # her own answer stays visible
    assert item_source(item) == "recorded"
    assert o.pairs() == {
        ("marac_referral", "v1"),
        ("idva_referral", "v1"),
        ("perpetrator_action", "p1"),
        ("separation_escalation", "v1"),
        ("long_term_review", "v1"),
    }
    assert o.one("separation_escalation", "v1")["agency"] == "idva"
    assert o.one("perpetrator_action", "p1")["priority"] == 1


def test_victim_answer_yes_without_an_officer_record_has_source_answer(post: Any) -> None:
    """Rule 1: an item the victim answered `yes`, with nothing recorded by the officer, shows
    source `answer`."""
    o = post(incident(yes=("strangulation",)))
    assert_victim(o, level="medium", score=1, unknown_count=0)
    item = o.item("strangulation")
    assert item["points"] == 1
    assert item_source(item) == "answer"


@pytest.mark.parametrize(
    ("circumstance", "item_id"),
    [("weapon_used", "weapons_used"), ("injury_to_victim", "current_injury")],
)
def test_officer_recorded_weapon_and_injury_count_whatever_the_victim_answered(
    post: Any, circumstance: str, item_id: str
) -> None:
    """Rule 1: `circumstances.weapon_used` → `weapons_used`, `circumstances.injury_to_victim`
    → `current_injury`, even where the victim answered `no` (source `observed`)."""
    o = post(incident(circumstances={circumstance: True}))
    # weapons_used is a critical item: the red flag gives medium; current_injury is plain.
    level = "medium" if item_id == "weapons_used" else "standard"
    assert_victim(o, level=level, score=1, unknown_count=0)
    item = o.item(item_id)
    assert item["points"] == 1
    assert "no" in item.values()
    assert item_source(item) == "observed"


def test_victim_perception_high_raises_standard_to_medium(post: Any) -> None:
    """Rule 3: the victim's own view `high` → at least `medium`, trigger `victim_perception`.

    Then rule 15: a medium victim gets the long-term reviews (IDVA: no children); rule 9:
    perpetrator_action priority 3 (medium, not serial, no marker)."""
    o = post(incident(officer={"victim_perception": "high"}))
    assert_victim(o, level="medium", score=0, unknown_count=0)
    assert "victim_perception" in o.fired()
    assert o.pairs() == {("perpetrator_action", "p1"), ("long_term_review", "v1")}
    assert o.one("perpetrator_action", "p1")["priority"] == 3


def test_victim_perception_medium_changes_nothing(post: Any) -> None:
    """Rule 3: only `high` raises; a view of `medium` leaves a standard victim standard."""
    o = post(incident(officer={"victim_perception": "medium"}))
    assert_victim(o, level="standard", score=0, unknown_count=0)
    assert "victim_perception" not in o.fired()
    assert o.pairs() == {("perpetrator_action", "p1")}


@pytest.mark.parametrize(
    ("case", "expected_unknowns", "incomplete"),
    [
        ("5_unknown", 5, False),
        ("6_unknown", 6, True),
        ("3_unknown_3_not_asked", 6, True),
        ("3_unknown_3_left_out", 6, True),
        ("6_unknown_one_of_them_observed", 5, False),
        ("checklist_absent", 24, True),
    ],
)
def test_incomplete_assessment_from_six_unknowns_or_no_checklist(
    post: Any, case: str, expected_unknowns: int, incomplete: bool
) -> None:
    """Rules 1, 5, 11, 16 — the 6-unknowns edge: `incomplete_assessment` fires when
    `unknown_count` ≥ 6 (`unknown` and `not_asked`/left-out items alike) or the checklist is
    absent, never changes the level, and raises `complete_risk_assessment` (police, due
    24 h after the report). An item the officer observed is an effective `yes`, not an
    unknown, so 6 unknown answers of which one was observed are 5 unknowns."""
    kwargs: dict[str, Any] = {}
    level, score = "standard", 0
    if case == "5_unknown":
        kwargs["unknown"] = unknown_items(5)
    elif case == "6_unknown":
        kwargs["unknown"] = unknown_items(6)
    elif case == "3_unknown_3_not_asked":
        kwargs["unknown"] = unknown_items(3)
        kwargs["not_asked"] = RIC_ITEMS[-3:]
    elif case == "3_unknown_3_left_out":
        answer_map = dict.fromkeys(RIC_ITEMS[:-3], "no")
        answer_map.update(dict.fromkeys(unknown_items(3), "unknown"))
        kwargs["answer_map"] = answer_map
    elif case == "6_unknown_one_of_them_observed":
        kwargs["unknown"] = unknown_items(6, first=("strangulation",))
        kwargs["circumstances"] = {"strangulation": True}
        level, score = "medium", 1  # observed strangulation: red flag
    else:
        kwargs["with_checklist"] = False
    o = post(incident(**kwargs))
    assert_victim(o, level=level, score=score, unknown_count=expected_unknowns)
    assert ("incomplete_assessment" in o.fired()) is incomplete
    expected: Pairs = {("perpetrator_action", "p1")}
    if score:
        expected |= {("strangulation_medical", "v1"), ("long_term_review", "v1")}
    if incomplete:
        expected.add(("complete_risk_assessment", "v1"))
        task = o.one("complete_risk_assessment", "v1")
        assert task["agency"] == "police"
        assert_due(task, "2026-11-18T10:00:00Z")
    assert o.pairs() == expected


def test_contract_example_under_v2(post: Any) -> None:
    """Rules 1, 3, 4, 6, 8, 9, 13, 15, 16, 17 on the contract's example incident (names and
    identifiers removed), reported Friday 20 November 2026 22:31 GMT.

    Effective answers change nothing here (every observed fact was also answered `yes`):
    15 of 24, 2 unknown → high. MARAC criteria now add `red_flag_high` (strangulation and
    threat to kill: two criticals). c1 (7, present, strangulation, victim high) and the
    unborn c2 are severe → strategy_discussion, referral due 4 hours after the report.
    """
    body = example_incident()
    body["source"]["reference"] = "V2-EXAMPLE-1"
    for person in body["persons"]:
        person.pop("name", None)
        person.pop("identifiers", None)
    o = post(body)
    assert_victim(
        o,
        level="high",
        score=15,
        unknown_count=2,
        marac={"visible_high_risk", "potential_escalation", "red_flag_high"},
    )
    assert "incomplete_assessment" not in o.fired()
    assert o.children() == {
        "c1": ("severe", "strategy_discussion"),
        "c2": ("severe", "strategy_discussion"),
    }
    assert o.pairs() == {
        ("children_social_care_referral", "c1"),
        ("children_social_care_referral", "c2"),
        ("strangulation_medical", "v1"),
        ("idva_referral", "v1"),
        ("marac_referral", "v1"),
        ("operation_encompass", "c1"),
        ("child_not_spoken_to", "c1"),
        ("perpetrator_action", "p1"),
        ("pregnancy_health", "v1"),
        ("separation_escalation", "v1"),
        ("serial_perpetrator", "p1"),
        ("child_recovery_support", "c1"),
        ("long_term_review", "v1"),
    }
    assert_due(o.one("children_social_care_referral", "c1"), "2026-11-21T02:31:00Z")
    assert_due(o.one("children_social_care_referral", "c2"), "2026-11-21T02:31:00Z")
    assert_due(o.one("strangulation_medical", "v1"), "2026-11-21T22:31:00Z")
    assert_due(o.one("operation_encompass", "c1"), "2026-11-23T08:30:00Z")  # Monday
    assert o.one("perpetrator_action", "p1")["priority"] == 1  # high and serial
    assert [f["agency"] for f in o.of("long_term_review", "v1")] == ["csc", "csc"]


# =========================================================================== children


def test_child_on_a_child_protection_plan_goes_to_the_allocated_social_worker(
    post: Any,
) -> None:
    """Rules 6, 9, 10, 15, 16: a child (10, not present) on a child-protection plan is
    `serious` (as v1) → `notify_allocated_social_worker`, flag
    `allocated_worker_notification` (csc, due 4 h) and no `children_social_care_referral`.

    Issue case: v1 sent her for a "child in need assessment"."""
    o = post(incident(children=[child(present=False, existing_plan="child_protection")]))
    assert_victim(o, level="standard", score=0, unknown_count=0)
    assert o.children() == {"c1": ("serious", "notify_allocated_social_worker")}
    assert o.pairs() == {
        ("allocated_worker_notification", "c1"),
        ("child_recovery_support", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    flag = o.one("allocated_worker_notification", "c1")
    assert flag["agency"] == "csc"
    assert_due(flag, "2026-11-17T14:00:00Z")
    assert o.one("perpetrator_action", "p1")["priority"] == 2  # a child serious
    assert [f["agency"] for f in o.of("long_term_review", "v1")] == ["csc", "csc"]


def test_child_already_on_a_child_in_need_plan_is_not_referred_for_a_cin_assessment(
    post: Any,
) -> None:
    """Rules 6, 10: a child on a child-in-need plan is `serious` (as v1) →
    `notify_allocated_social_worker`, `allocated_worker_notification`, no CSC referral.

    Issue case: v1 "referred for CIN assessment" a child already on a CIN plan."""
    o = post(incident(children=[child(present=False, existing_plan="child_in_need")]))
    assert o.children() == {"c1": ("serious", "notify_allocated_social_worker")}
    assert o.pairs() == {
        ("allocated_worker_notification", "c1"),
        ("child_recovery_support", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    assert o.one("allocated_worker_notification", "c1")["agency"] == "csc"


def test_looked_after_child_at_serious_goes_to_the_allocated_social_worker(post: Any) -> None:
    """Rules 6, 10: a looked-after child (10) who intervened is `serious` →
    `notify_allocated_social_worker`, `allocated_worker_notification`, no CSC referral."""
    o = post(
        incident(
            children=[
                child(
                    present=True,
                    spoken_to_by_officer=True,
                    intervened=True,
                    existing_plan="looked_after",
                )
            ]
        )
    )
    assert o.children() == {"c1": ("serious", "notify_allocated_social_worker")}
    assert o.pairs() == {
        ("allocated_worker_notification", "c1"),
        ("child_recovery_support", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }


def test_looked_after_child_with_nothing_else_stays_moderate_but_the_worker_is_told(
    post: Any,
) -> None:
    """Rules 6, 10: "Levels as v1" — v1 raises CIN and CP plans to serious but not
    looked-after, so a looked-after child with nothing else recorded stays `moderate` →
    `universal_support`; rule 10 still tells the allocated worker (for each child whose plan
    is CIN, CP or looked-after, whatever the level).

    READING: rule 10 does not depend on the level; a practitioner would want the child's
    social worker told of every DA incident in the placement."""
    o = post(incident(children=[child(present=False, existing_plan="looked_after")]))
    assert o.children() == {"c1": ("moderate", "universal_support")}
    assert o.pairs() == {
        ("allocated_worker_notification", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    assert o.one("perpetrator_action", "p1")["priority"] == 3


def test_child_on_an_early_help_plan_goes_to_the_lead_professional(post: Any) -> None:
    """Rules 6, 10 and the new `existing_plan` value `early_help`: a child (10) present
    (spoken to) is `moderate_to_serious` → `notify_lead_professional`; an early-help plan is
    not CIN/CP/looked-after, so no `allocated_worker_notification`.

    READING: `early_help_offer` is not named in docs/rules.md, so it stays as v1 (every
    moderate_to_serious child): it is the only flag that reaches the early-help service,
    where the lead professional sits."""
    o = post(
        incident(
            children=[child(present=True, spoken_to_by_officer=True, existing_plan="early_help")]
        )
    )
    assert o.children() == {"c1": ("moderate_to_serious", "notify_lead_professional")}
    assert o.pairs() == {
        ("early_help_offer", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    assert o.one("perpetrator_action", "p1")["priority"] == 3


def test_early_help_plan_child_at_serious_is_referred_for_a_cin_assessment(post: Any) -> None:
    """Rules 6, 10: at `serious`, an early-help plan is not an allocated-worker plan →
    `child_in_need_assessment` and `children_social_care_referral` as v1."""
    o = post(
        incident(
            children=[
                child(
                    present=True,
                    spoken_to_by_officer=True,
                    intervened=True,
                    existing_plan="early_help",
                )
            ]
        )
    )
    assert o.children() == {"c1": ("serious", "child_in_need_assessment")}
    assert o.pairs() == {
        ("children_social_care_referral", "c1"),
        ("child_recovery_support", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }


def test_severe_child_on_a_child_protection_plan_gets_a_strategy_discussion_and_both_flags(
    post: Any,
) -> None:
    """Rules 6, 10, 16: `severe` → `strategy_discussion` whatever the plan;
    `children_social_care_referral` stays for every severe child, and the allocated worker
    is told too; both due 4 hours after the report.

    The child (10, present, spoken to) was injured and the perpetrator threatened to kill
    (severe); the victim is medium by the red flag."""
    o = post(
        incident(
            yes=("threat_to_kill",),
            children=[
                child(
                    present=True,
                    spoken_to_by_officer=True,
                    injured=True,
                    existing_plan="child_protection",
                )
            ],
        )
    )
    assert_victim(o, level="medium", score=1, unknown_count=0)
    assert o.children() == {"c1": ("severe", "strategy_discussion")}
    assert o.pairs() == {
        ("children_social_care_referral", "c1"),
        ("allocated_worker_notification", "c1"),
        ("child_recovery_support", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    assert_due(o.one("children_social_care_referral", "c1"), "2026-11-17T14:00:00Z")
    assert_due(o.one("allocated_worker_notification", "c1"), "2026-11-17T14:00:00Z")


def test_observed_weapon_makes_a_present_child_serious(post: Any) -> None:
    """Rules 1, 2: children's rules read the effective answer. The officer recorded a weapon
    (the victim answered `unknown`): the victim is medium (red flag) and a present child
    (10, spoken to, no plan) is serious (present when `weapons_used` = yes)."""
    o = post(
        incident(
            unknown=("weapons_used",),
            circumstances={"weapon_used": True},
            children=[child(present=True, spoken_to_by_officer=True, existing_plan="none")],
        )
    )
    assert_victim(o, level="medium", score=1, unknown_count=0)
    assert o.children() == {"c1": ("serious", "child_in_need_assessment")}
    assert o.pairs() == {
        ("children_social_care_referral", "c1"),
        ("child_recovery_support", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }


# =========================================================================== perpetrator


def test_seven_priors_and_a_breach_of_release_give_a_perpetrator_task(post: Any) -> None:
    """Rule 9: perpetrator_action (police) for every incident, whatever the victim's level;
    priority 2 for a marker or breach. Issue case: 7 prior DA incidents, the last 14 days
    ago, a breach of conditional release; victim standard, not serial → v1 raised nothing.
    """
    o = post(
        incident(
            perpetrator_history={
                "prior_da_incidents_total": 7,
                "last_incident_at": "2026-11-03T10:00:00Z",
                "breach_of_conditional_release": True,
            }
        )
    )
    assert_victim(o, level="standard", score=0, unknown_count=0)
    assert o.pairs() == {("perpetrator_action", "p1")}
    action = o.one("perpetrator_action", "p1")
    assert (action["agency"], action["priority"]) == ("police", 2)


def test_probation_supervision_notifies_probation(post: Any) -> None:
    """Rule 9: `probation_notification` (probation) when
    `perpetrator_history.under_probation_supervision` is true (the issue's perpetrator, on
    licence)."""
    o = post(
        incident(
            perpetrator_history={
                "prior_da_incidents_total": 7,
                "last_incident_at": "2026-11-03T10:00:00Z",
                "breach_of_conditional_release": True,
                "under_probation_supervision": True,
            }
        )
    )
    assert o.pairs() == {("perpetrator_action", "p1"), ("probation_notification", "p1")}
    assert o.one("probation_notification", "p1")["agency"] == "probation"
    assert o.agencies("perpetrator_action", "p1") == {"police"}


def test_no_probation_notification_when_not_under_supervision(post: Any) -> None:
    """Rule 9: `under_probation_supervision` false → no probation_notification."""
    o = post(incident(perpetrator_history={"under_probation_supervision": False}))
    assert o.pairs() == {("perpetrator_action", "p1")}


@pytest.mark.parametrize(
    ("case", "priority"),
    [
        ("nothing", 3),
        ("victim_medium_only", 3),
        ("child_moderate_to_serious_only", 3),
        ("victim_high", 1),
        ("serial", 1),
        ("marker_prior_violence", 2),
        ("breach_answer", 2),
        ("child_serious", 2),
    ],
)
def test_perpetrator_action_priority(post: Any, case: str, priority: int) -> None:
    """Rule 9: priority 1 when the victim is high or the perpetrator serial, 2 when any
    marker, breach or child serious or above, else 3 (agency police, always raised)."""
    kwargs: dict[str, Any] = {
        "nothing": {},
        "victim_medium_only": {"officer": {"victim_perception": "high"}},
        "child_moderate_to_serious_only": {
            "children": [child(present=True, spoken_to_by_officer=True)]
        },
        "victim_high": {
            "yes": ("strangulation", "stalking_harassment", "pregnant_or_recent_birth")
        },
        "serial": {"perpetrator_history": {"prior_da_victims": 1}},
        "marker_prior_violence": {"perpetrator_history": {"prior_non_da_violence": True}},
        "breach_answer": {"yes": ("breach_of_bail_or_order",)},
        "child_serious": {
            "children": [child(present=True, spoken_to_by_officer=True, intervened=True)]
        },
    }[case]
    o = post(incident(**kwargs))
    action = o.one("perpetrator_action", "p1")
    assert (action["agency"], action["priority"]) == ("police", priority)


# =========================================================================== adults


def test_mother_of_72_threatened_with_a_knife_by_her_son_gets_adult_safeguarding(
    post: Any,
) -> None:
    """Rules 1, 12: a victim of 72 (her adult son, a knife: recorded and answered) →
    `adult_safeguarding`, agency `adult_social_care`. Weapon: red flag → medium.

    Issue case: v1 had no adult-safeguarding route."""
    o = post(
        incident(
            yes=("weapons_used",),
            victim={"date_of_birth": "1954-05-10", "sex": "female"},
            relationship={"type": "family_member", "cohabiting": True},
            circumstances={"weapon_used": True},
        )
    )
    assert_victim(o, level="medium", score=1, unknown_count=0)
    assert o.pairs() == {
        ("adult_safeguarding", "v1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    assert o.one("adult_safeguarding", "v1")["agency"] == "adult_social_care"
    assert o.one("perpetrator_action", "p1")["priority"] == 2  # weapons marker
    assert [f["agency"] for f in o.of("long_term_review", "v1")] == ["idva", "idva"]


def test_victim_with_care_and_support_needs_gets_adult_safeguarding(post: Any) -> None:
    """Rule 12 and the new field `persons[].care_and_support_needs`: a victim of 36 with care
    and support needs → `adult_safeguarding` (adult_social_care)."""
    o = post(incident(victim={"care_and_support_needs": True}))
    assert_victim(o, level="standard", score=0, unknown_count=0)
    assert o.pairs() == {("adult_safeguarding", "v1"), ("perpetrator_action", "p1")}
    assert o.one("adult_safeguarding", "v1")["agency"] == "adult_social_care"


@pytest.mark.parametrize(
    ("occurred_at", "date_of_birth", "safeguarding"),
    [
        # Tuesday 17 November 2026 10:00 GMT: 65th birthday tomorrow → 64.
        ("2026-11-17T10:00:00Z", "1961-11-18", False),
        # 65th birthday on the incident date → 65.
        ("2026-11-17T10:00:00Z", "1961-11-17", True),
        # 16 June 2026 23:30 UTC is 17 June 00:30 BST in London: 65 on the London date
        # (the UTC date would still say 64).
        ("2026-06-16T23:30:00Z", "1961-06-17", True),
        # 16 June 2026 22:59 UTC is 23:59 BST on 16 June: still 64.
        ("2026-06-16T22:59:00Z", "1961-06-17", False),
    ],
)
def test_age_65_on_the_incidents_london_date(
    post: Any, occurred_at: str, date_of_birth: str, safeguarding: bool
) -> None:
    """Rule 12 boundary: 65 or over at the incident date — the London date of
    `occurred_at`, birthday included (64 the day before the 65th birthday)."""
    o = post(
        incident(
            reported_at=occurred_at,
            occurred_at=occurred_at,
            victim={"date_of_birth": date_of_birth},
        )
    )
    expected: Pairs = {("perpetrator_action", "p1")}
    if safeguarding:
        expected.add(("adult_safeguarding", "v1"))
    assert o.pairs() == expected


# =========================================================================== schools


def test_nursery_child_and_college_student_are_notified(post: Any) -> None:
    """Rules 6, 13, 17: operation_encompass for every born child with a recorded school or
    setting, whatever the age — a 3-year-old at nursery and a 17-year-old at college (new
    field `school.phase`). Issue case: v1 notified neither (school age 4-16).

    Reported Tuesday 10:00 (after 08:30) → due Wednesday 08:30. The nursery child is moved
    up one level for age under 7 (moderate_to_serious → early help); neither was present."""
    o = post(
        incident(
            children=[
                child("c1", dob="2023-06-01", present=False, school=school("200001", "nursery")),
                child("c2", dob="2009-03-01", present=False, school=school("200002", "college")),
            ]
        )
    )
    assert o.children() == {
        "c1": ("moderate_to_serious", "early_help"),
        "c2": ("moderate", "universal_support"),
    }
    assert o.pairs() == {
        ("operation_encompass", "c1"),
        ("operation_encompass", "c2"),
        ("early_help_offer", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    for ref in ("c1", "c2"):
        flag = o.one("operation_encompass", ref)
        assert flag["agency"] == "school"
        assert_due(flag, "2026-11-18T08:30:00Z")


def test_monday_0130_incident_tells_the_school_on_monday_morning(post: Any) -> None:
    """Rule 17: Monday 16 November 2026 01:30 GMT → Monday 08:30 (v1: Tuesday 08:30)."""
    o = post(
        incident(
            reported_at="2026-11-16T01:30:00Z",
            children=[child(present=False, school=school(phase="primary"))],
        )
    )
    assert o.pairs() == {
        ("operation_encompass", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    assert_due(o.one("operation_encompass", "c1"), "2026-11-16T08:30:00Z")


@pytest.mark.parametrize(
    ("reported_at", "due_at"),
    [
        # Tuesday 17 November 2026 (GMT): the 08:30 edge.
        ("2026-11-17T08:29:00Z", "2026-11-17T08:30:00Z"),
        ("2026-11-17T08:30:00Z", "2026-11-18T08:30:00Z"),  # 08:30 is not after 08:30
        ("2026-11-17T08:31:00Z", "2026-11-18T08:30:00Z"),
        # Friday 13 November 23:00 → Monday 16 November 08:30.
        ("2026-11-13T23:00:00Z", "2026-11-16T08:30:00Z"),
        # Monday 01:30 → Monday 08:30; Monday 09:00 → Tuesday 08:30.
        ("2026-11-16T01:30:00Z", "2026-11-16T08:30:00Z"),
        ("2026-11-16T09:00:00Z", "2026-11-17T08:30:00Z"),
        # Summer (BST): Tuesday 16 June 2026 08:29 / 08:30 London = 07:29 / 07:30 UTC.
        ("2026-06-16T07:29:00Z", "2026-06-16T07:30:00Z"),
        ("2026-06-16T07:30:00Z", "2026-06-17T07:30:00Z"),
        # Sunday 29 March 2026 00:30 GMT (BST starts at 01:00) → Monday 30 March 08:30 BST.
        ("2026-03-29T00:30:00Z", "2026-03-30T07:30:00Z"),
        # Friday 23 October 2026 23:00 BST (22:00 UTC) → Monday 26 October 08:30 GMT
        # (BST ended on Sunday 25 October).
        ("2026-10-23T22:00:00Z", "2026-10-26T08:30:00Z"),
    ],
)
def test_operation_encompass_is_due_at_the_first_school_day_0830_after_the_report(
    post: Any, reported_at: str, due_at: str
) -> None:
    """Rule 17 boundary: 08:30 (Europe/London) on the first school day whose 08:30 is after
    `reported_at` (strictly after; school days Monday to Friday, no holidays configured)."""
    o = post(
        incident(
            reported_at=reported_at,
            # No `phase`: this boundary checks rule 17 alone.
            children=[child(present=False, school=school())],
        )
    )
    flag = o.one("operation_encompass", "c1")
    assert flag["agency"] == "school"
    assert_due(flag, due_at)


# =========================================================================== hours: N


def _hours_case(kind: str, reported_at: str) -> dict[str, Any]:
    if kind == "children_social_care_referral":
        # A severe child (injured, threat to kill), no plan.
        return incident(
            reported_at=reported_at,
            yes=("threat_to_kill",),
            children=[child(present=True, spoken_to_by_officer=True, injured=True)],
        )
    if kind == "allocated_worker_notification":
        return incident(
            reported_at=reported_at,
            children=[child(present=False, existing_plan="child_protection")],
        )
    if kind == "strangulation_medical":
        return incident(reported_at=reported_at, yes=("strangulation",))
    assert kind == "complete_risk_assessment"
    return incident(reported_at=reported_at, unknown=unknown_items(6))


HOURS = {
    "children_social_care_referral": ("c1", 4),
    "allocated_worker_notification": ("c1", 4),
    "strangulation_medical": ("v1", 24),
    "complete_risk_assessment": ("v1", 24),
}
# reported_at → due after 4 h, due after 24 h (elapsed time; London wall clock in comments).
DUE_AFTER = {
    # Tuesday 17 November 2026 23:40 GMT → Wednesday 03:40 GMT (v1: 23:59, 19 minutes);
    # 24 h → Wednesday 23:40.
    "2026-11-17T23:40:00Z": ("2026-11-18T03:40:00Z", "2026-11-18T23:40:00Z"),
    # Sunday 29 March 2026 00:30 GMT, BST starts at 01:00 GMT: + 4 h = 04:30 UTC (05:30 BST
    # on the wall clock); + 24 h = Monday 00:30 UTC (01:30 BST).
    "2026-03-29T00:30:00Z": ("2026-03-29T04:30:00Z", "2026-03-30T00:30:00Z"),
    # Sunday 25 October 2026 00:30 UTC = 01:30 BST (first of the two 01:30s), BST ends at
    # 01:00 UTC: + 4 h = 04:30 UTC (04:30 GMT on the wall clock); + 24 h = Monday 00:30 GMT.
    "2026-10-25T00:30:00Z": ("2026-10-25T04:30:00Z", "2026-10-26T00:30:00Z"),
}


@pytest.mark.parametrize("reported_at", sorted(DUE_AFTER))
@pytest.mark.parametrize("kind", sorted(HOURS))
def test_hours_policy_is_elapsed_hours_across_midnight_and_clock_changes(
    post: Any, kind: str, reported_at: str
) -> None:
    """Rule 16 boundary: `hours: N` is N hours after `reported_at` — severe-child
    `children_social_care_referral` (4), `allocated_worker_notification` (4),
    `strangulation_medical` (24), `complete_risk_assessment` (24) — across midnight and
    both 2026 clock changes, stored in UTC.

    READING: N hours of elapsed time (a 4-hour deadline stays 4 real hours when the clocks
    change), not N hours on the London wall clock."""
    subject, hours = HOURS[kind]
    after_4, after_24 = DUE_AFTER[reported_at]
    o = post(_hours_case(kind, reported_at))
    assert_due(o.one(kind, subject), after_4 if hours == 4 else after_24)


def test_severe_child_reported_at_2340_is_due_at_0340_not_2359(post: Any) -> None:
    """Rules 6, 16: the issue's case — a severe child reported at 23:40 is no longer due at
    23:59 (19 minutes) but at 03:40 the next morning; the full flag set."""
    o = post(_hours_case("children_social_care_referral", "2026-11-17T23:40:00Z"))
    assert_victim(o, level="medium", score=1, unknown_count=0)
    assert o.children() == {"c1": ("severe", "strategy_discussion")}
    assert o.pairs() == {
        ("children_social_care_referral", "c1"),
        ("child_recovery_support", "c1"),
        ("perpetrator_action", "p1"),
        ("long_term_review", "v1"),
    }
    flag = o.one("children_social_care_referral", "c1")
    assert flag["agency"] == "csc"
    assert_due(flag, "2026-11-18T03:40:00Z")


# =========================================================================== reviews


def test_household_with_children_and_a_standard_victim_gets_the_long_term_reviews(
    post: Any,
) -> None:
    """Rule 15: any born child in the incident → long_term_review at 3 and 12 months, agency
    csc (there are children), even though the victim is standard. Issue case: v1 reviewed
    only medium and high victims."""
    o = post(incident(children=[child(present=False)]))
    assert_victim(o, level="standard", score=0, unknown_count=0)
    assert o.children() == {"c1": ("moderate", "universal_support")}
    assert o.pairs() == {("perpetrator_action", "p1"), ("long_term_review", "v1")}
    reviews = o.of("long_term_review", "v1")
    assert [f["agency"] for f in reviews] == ["csc", "csc"]
    # Months as v1 (rule 18): 17 Feb 2027 and 17 Nov 2027, 09:00 London (GMT).
    assert sorted(f["due_at"][:16] for f in reviews) == ["2027-02-17T09:00", "2027-11-17T09:00"]


def test_victim_with_a_reported_da_incident_in_the_last_year_gets_the_reviews(
    post: Any,
) -> None:
    """Rule 15: a DA incident for the victim in the 12 months before (reported count 1) →
    reviews, agency idva (no children). 1 + this one < 3: no potential escalation."""
    o = post(incident(victim_history={"prior_da_incidents_12m": 1}))
    assert_victim(o, level="standard", score=0, unknown_count=0)
    assert o.pairs() == {("perpetrator_action", "p1"), ("long_term_review", "v1")}
    assert [f["agency"] for f in o.of("long_term_review", "v1")] == ["idva", "idva"]


def test_victim_whose_reported_last_incident_was_within_the_year_gets_the_reviews(
    post: Any,
) -> None:
    """Rule 15 ("stored or reported").

    READING: `victim_history.last_incident_at` within the 12 months before the incident is
    a reported DA incident in that window, even without `prior_da_incidents_12m`."""
    o = post(incident(victim_history={"last_incident_at": "2026-09-01T20:00:00Z"}))
    assert o.pairs() == {("perpetrator_action", "p1"), ("long_term_review", "v1")}
    assert [f["agency"] for f in o.of("long_term_review", "v1")] == ["idva", "idva"]


def test_victim_with_a_stored_da_incident_in_the_last_year_gets_the_reviews(
    post: Any,
) -> None:
    """Rule 15 (stored history): the service's own earlier incident for the same (invented)
    victim, 3 months before, counts. Standard victim, no children → idva."""
    victim = {
        "date_of_birth": "1992-02-14",
        "name": {"given": "Invented", "family": "Testvictim"},
        "identifiers": [{"scheme": "pnc", "value": "92/900001X"}],
    }
    post(incident(reported_at="2026-08-17T10:00:00Z", victim=victim))
    o = post(incident(victim=victim))
    assert_victim(o, level="standard", score=0, unknown_count=0)
    assert o.pairs() == {("perpetrator_action", "p1"), ("long_term_review", "v1")}
    assert [f["agency"] for f in o.of("long_term_review", "v1")] == ["idva", "idva"]


def test_no_reviews_for_a_standard_victim_without_children_or_recent_history(
    post: Any,
) -> None:
    """Rule 15, the other side: standard, no child, no DA incident in the last year (the
    last one reported 13 months before) → no long_term_review."""
    o = post(
        incident(
            reported_at=TUESDAY_10,
            victim_history={
                "prior_da_incidents_12m": 0,
                "last_incident_at": "2025-10-10T20:00:00Z",
            },
        )
    )
    assert o.pairs() == {("perpetrator_action", "p1")}
