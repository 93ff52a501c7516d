"""History: reported and stored figures side by side, windows, and the perpetrator profile.

Incident ids and person ids are invented.
"""

from __future__ import annotations

import pytest

from app.scoring import (
    Assessment,
    DefinitionSet,
    History,
    LinkedVictim,
    StoredIncident,
    StoredMaracReferral,
    assess,
)
from app.scoring.results import Figure, Trigger
from tests.scoring.factories import at, child, make_incident

# The default incident is at 2026-11-20T22:15:00Z.


def run(history_of: object, definitions: DefinitionSet, **incident: object) -> Assessment:
    built = make_incident(**incident)  # type: ignore[arg-type]
    history = History.reported(built)
    if callable(history_of):
        history = history_of(history)
    return assess(built, history, definitions)


def trigger(result: Assessment, rule: str) -> Trigger:
    return next(t for t in result.victim.triggers if t.rule == rule and t.stage == "marac")


def figures(result: Assessment, name: str) -> list[Figure]:
    return [f for f in result.history if f.name == name]


# --- Potential escalation from stored incidents --------------------------------------


def stored(*occurred: str) -> list[StoredIncident]:
    return [StoredIncident(f"inc-{i}", at(when)) for i, when in enumerate(occurred, start=1)]


def test_two_stored_incidents_in_twelve_months_meet_potential_escalation(
    definitions: DefinitionSet,
) -> None:
    result = run(
        lambda h: h.with_stored(
            victim_incidents=stored("2026-03-01T10:00:00Z", "2026-10-02T19:40:00Z")
        ),
        definitions,
    )
    escalation = trigger(result, "potential_escalation")
    assert escalation.fired
    assert escalation.detail == (
        "this incident + 2 earlier in 12 months = 3 ≥ 3 (none reported; stored 2 [inc-1, inc-2])"
    )
    [figure] = figures(result, "prior_da_incidents_12m")
    assert (figure.source, figure.value, figure.incident_ids) == ("stored", 2, ("inc-1", "inc-2"))


@pytest.mark.parametrize(
    ("occurred", "counted"),
    [
        ("2025-11-20T22:15:00Z", True),  # exactly 12 months before: the window's first moment
        ("2025-11-20T22:14:59Z", False),  # one second earlier
        ("2026-11-20T22:14:00Z", True),  # a minute before this incident
        ("2026-11-20T22:15:00Z", False),  # this incident's own time: not "before" it
        ("2026-11-21T08:00:00Z", False),  # later than this incident
    ],
)
def test_stored_incidents_count_only_inside_the_window_before_the_incident(
    definitions: DefinitionSet, occurred: str, counted: bool
) -> None:
    result = run(lambda h: h.with_stored(victim_incidents=stored(occurred)), definitions)
    [figure] = figures(result, "prior_da_incidents_12m")
    assert figure.value == (1 if counted else 0)


def test_the_larger_of_stored_and_reported_counts_is_used(definitions: DefinitionSet) -> None:
    more_reported = run(
        lambda h: h.with_stored(victim_incidents=stored("2026-10-02T19:40:00Z")),
        definitions,
        victim_history={"prior_da_incidents_12m": 2},
    )
    escalation = trigger(more_reported, "potential_escalation")
    assert escalation.fired
    assert escalation.detail.endswith("(reported 2; stored 1 [inc-1])")
    sources = {f.source: f.value for f in figures(more_reported, "prior_da_incidents_12m")}
    assert sources == {"reported": 2, "stored": 1}

    more_stored = run(
        lambda h: h.with_stored(
            victim_incidents=stored("2026-05-01T10:00:00Z", "2026-10-02T19:40:00Z")
        ),
        definitions,
        victim_history={"prior_da_incidents_12m": 0},
    )
    assert trigger(more_stored, "potential_escalation").fired


def test_stored_history_with_nothing_found_says_zero_not_unknown(
    definitions: DefinitionSet,
) -> None:
    result = run(lambda h: h.with_stored(victim_incidents=[]), definitions)
    assert "stored 0" in trigger(result, "potential_escalation").detail
    assert "no earlier MARAC referral reported or stored" in trigger(result, "repeat_marac").detail


# --- Repeat MARAC from the stored referral ------------------------------------------------


@pytest.mark.parametrize(("referred_on", "fires"), [("2026-01-15", True), ("2025-10-01", False)])
def test_stored_marac_referral_within_twelve_months_meets_repeat_marac(
    definitions: DefinitionSet, referred_on: str, fires: bool
) -> None:
    import datetime as dt

    referral = StoredMaracReferral("inc-9", dt.date.fromisoformat(referred_on))
    result = run(lambda h: h.with_stored(victim_last_marac_referral=referral), definitions)
    repeat = trigger(result, "repeat_marac")
    assert repeat.fired is fires
    assert f"{referred_on} (stored, incident inc-9)" in repeat.detail
    [figure] = figures(result, "last_marac_referral")
    assert (figure.source, figure.value, figure.incident_ids) == ("stored", referred_on, ("inc-9",))


# --- Perpetrator ---------------------------------------------------------------------------


def test_serial_when_the_submitter_reports_a_prior_victim(definitions: DefinitionSet) -> None:
    result = run(None, definitions, perpetrator_history={"prior_da_victims": 1})
    assert result.perpetrator.serial
    assert result.perpetrator.serial_reason == (
        "serial: reported prior_da_victims 1 ≥ 1; stored history not consulted"
    )
    assert "Perpetrator linked to other victims (serial)." in result.summary


def test_not_serial_when_no_prior_victims_are_reported(definitions: DefinitionSet) -> None:
    result = run(None, definitions, perpetrator_history={"prior_da_victims": 0})
    assert not result.perpetrator.serial
    assert result.perpetrator.serial_reason.startswith("not serial: reported prior_da_victims 0")
    assert "serial" not in result.summary


def test_serial_when_stored_records_link_two_distinct_victims(
    definitions: DefinitionSet,
) -> None:
    def with_victims(h: History) -> History:
        return h.with_stored(
            victim_person_id="person-a",
            perpetrator_victims=[LinkedVictim("person-b", ("inc-2", "inc-1"))],
            perpetrator_incident_ids=["inc-1", "inc-2"],
        )

    result = run(with_victims, definitions)
    assert result.perpetrator.serial
    assert "linked to 2 distinct victims (stored [inc-1, inc-2]) ≥ 2" in (
        result.perpetrator.serial_reason
    )
    [figure] = figures(result, "distinct_victims")
    assert (figure.value, figure.incident_ids) == (2, ("inc-1", "inc-2"))


def test_not_serial_when_stored_records_show_only_this_victim(
    definitions: DefinitionSet,
) -> None:
    def same_victim(h: History) -> History:
        return h.with_stored(
            victim_person_id="person-a",
            perpetrator_victims=[LinkedVictim("person-a", ("inc-1",))],
            perpetrator_incident_ids=["inc-1"],
        )

    result = run(same_victim, definitions)
    assert not result.perpetrator.serial
    assert "linked to 1 distinct victim(s)" in result.perpetrator.serial_reason


def test_markers_name_their_sources(definitions: DefinitionSet) -> None:
    result = run(
        None,
        definitions,
        yes=["threat_to_kill", "perpetrator_suicidal"],
        perpetrator_history={
            "prior_da_incidents_total": 3,
            "prior_custody": False,
            "warning_markers": ["firearms", "self_harm"],
        },
        circumstances={"weapon_used": False, "alcohol_involved": True},
    )
    markers = {m.id: m for m in result.perpetrator.markers}
    assert [m.id for m in result.perpetrator.markers] == [
        "prior_da",
        "prior_non_da_violence",
        "prior_custody",
        "breach_of_bail_or_orders",
        "threats_to_kill",
        "weapons",
        "substance_or_mental_health",
        "suicidality",
    ]
    assert markers["prior_da"].present is True
    assert [(e.source, e.field, e.value) for e in markers["prior_da"].evidence] == [
        ("reported", "perpetrator_history.prior_da_incidents_total", 3)
    ]
    assert markers["prior_custody"].present is False
    assert markers["threats_to_kill"].present is True
    assert markers["threats_to_kill"].evidence[0].field == "victim_checklist.threat_to_kill"
    # A firearms warning outweighs "no weapon used this time".
    assert markers["weapons"].present is True
    assert {(e.source, e.value) for e in markers["weapons"].evidence} == {
        ("checklist", "no"),
        ("incident", False),
        ("reported", "firearms"),
    }
    assert markers["substance_or_mental_health"].present is True
    assert markers["suicidality"].present is True
    # Nothing known either way about non-domestic violence beyond the "no" answer.
    assert markers["prior_non_da_violence"].present is False


def test_a_marker_with_no_source_is_unknown(definitions: DefinitionSet) -> None:
    built = make_incident(answer_map={})
    result = assess(built, History.reported(built), definitions)
    assert {m.id: m.present for m in result.perpetrator.markers} == dict.fromkeys(
        (
            "prior_da",
            "prior_non_da_violence",
            "prior_custody",
            "breach_of_bail_or_orders",
            "threats_to_kill",
            "weapons",
            "substance_or_mental_health",
            "suicidality",
        ),
        None,
    )


def test_stored_child_incidents_are_shown_with_their_ids(definitions: DefinitionSet) -> None:
    result = run(
        lambda h: h.with_stored(child_incident_ids={"c1": ["inc-4", "inc-3"]}),
        definitions,
        children=[child("c1")],
    )
    [figure] = figures(result, "prior_incidents")
    assert (figure.subject, figure.value, figure.incident_ids) == ("c1", 2, ("inc-3", "inc-4"))


# --- History round trip ----------------------------------------------------------------------


def test_history_survives_a_round_trip_through_its_dict(definitions: DefinitionSet) -> None:
    built = make_incident(
        children=[child("c1")],
        victim_history={"prior_da_incidents_12m": 1, "last_marac_referral": "2026-02-01"},
        perpetrator_history={"warning_markers": ["violence"], "prior_da_victims": 2},
    )
    import datetime as dt

    history = History.reported(built).with_stored(
        victim_person_id="person-a",
        victim_incidents=stored("2026-01-01T00:00:00+00:00"),
        victim_last_marac_referral=StoredMaracReferral("inc-7", dt.date(2026, 1, 2)),
        perpetrator_victims=[LinkedVictim("person-b", ("inc-5",))],
        perpetrator_incident_ids=["inc-5"],
        child_person_ids={"c1": "person-c"},
        child_incident_ids={"c1": ["inc-5"]},
    )
    assert History.from_dict(history.to_dict()) == history
    assert History.from_dict(History.reported(built).to_dict()) == History.reported(built)


def test_history_for_another_victim_is_refused(definitions: DefinitionSet) -> None:
    built = make_incident()
    other = make_incident()
    history = History.reported(other)
    import dataclasses

    wrong = dataclasses.replace(
        history, victim=dataclasses.replace(history.victim, person_ref="v9")
    )
    with pytest.raises(ValueError, match="different victim"):
        assess(built, wrong, definitions)


def test_a_stored_incident_time_without_an_offset_is_refused() -> None:
    with pytest.raises(ValueError, match="needs an offset"):
        StoredIncident("inc-1", at("2026-01-01T10:00:00"))
