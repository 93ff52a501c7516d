"""Sequences of hand-written incidents whose scores depend on stored history.

Each test submits incidents through the API, in the order a records system might send
them (some out of order), and checks what the engine counted and which flags were raised.
All people, identifiers and references are invented test data.
"""

from __future__ import annotations

import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessments.models import Assessment
from app.audit import AuditEvent
from app.flags.models import Flag, FlagEvent
from tests.people.factories import (
    AMY,
    BETH,
    HIGH_ANSWERS,
    MEDIUM_ANSWERS,
    PAUL,
    QUINN,
    child,
    days_before,
    make_incident,
    perpetrator,
    submit,
    trigger,
    victim,
)


def flags_of(session: Session, incident_id: str, flag_type: str | None = None) -> list[Flag]:
    query = select(Flag).where(Flag.incident_id == uuid.UUID(incident_id))
    if flag_type is not None:
        query = query.where(Flag.type == flag_type)
    return list(session.scalars(query))


def assessments_of(session: Session, incident_id: str) -> list[dict[str, Any]]:
    return [
        {"version": a.version, "result": a.result, "inputs": a.inputs}
        for a in session.scalars(
            select(Assessment)
            .where(Assessment.incident_id == uuid.UUID(incident_id))
            .order_by(Assessment.version)
        )
    ]


def amy_and_paul(reference: str, days: float, **kwargs: Any) -> dict[str, Any]:
    return make_incident(
        reference,
        days_before(days),
        [victim(**AMY, pnc="95/100001A"), perpetrator(**PAUL, pnc="86/200002B")],
        **kwargs,
    )


def test_a_third_incident_in_twelve_months_meets_potential_escalation_from_stored_incidents(
    client: TestClient, submitter: dict[str, str]
) -> None:
    first = submit(client, submitter, amy_and_paul("ESC-1", 300))
    second = submit(client, submitter, amy_and_paul("ESC-2", 120))
    assert "potential_escalation" not in second["assessment"]["victim"]["marac"]["criteria"]

    third = submit(client, submitter, amy_and_paul("ESC-3", 0))

    marac = third["assessment"]["victim"]["marac"]
    assert marac["refer"] is True
    assert "potential_escalation" in marac["criteria"]
    assert third["assessment"]["victim"]["level"] == "high"
    detail = trigger(third, "potential_escalation")["detail"]
    ids = [first["incident_id"], second["incident_id"]]  # in the order they occurred
    assert detail == (
        f"this incident + 2 earlier in 12 months = 3 ≥ 3 (none reported; stored 2 "
        f"[{', '.join(ids)}])"
    )
    assert any(f["type"] == "marac_referral" for f in third["flags"])


def test_incidents_older_than_the_window_do_not_count_towards_escalation(
    client: TestClient, submitter: dict[str, str]
) -> None:
    submit(client, submitter, amy_and_paul("OLD-1", 500))
    recent = submit(client, submitter, amy_and_paul("OLD-2", 100))
    third = submit(client, submitter, amy_and_paul("OLD-3", 0))
    assert "potential_escalation" not in third["assessment"]["victim"]["marac"]["criteria"]
    assert f"stored 1 [{recent['incident_id']}]" in trigger(third, "potential_escalation")["detail"]


def test_a_new_incident_within_a_year_of_a_marac_referral_meets_repeat_marac(
    client: TestClient, submitter: dict[str, str]
) -> None:
    referred = submit(client, submitter, amy_and_paul("RPT-1", 200, answers=HIGH_ANSWERS))
    assert referred["assessment"]["victim"]["marac"]["criteria"] == [
        "visible_high_risk",
        "red_flag_high",
    ]

    again = submit(client, submitter, amy_and_paul("RPT-2", 0))

    marac = again["assessment"]["victim"]["marac"]
    assert marac["criteria"] == ["repeat_marac"]
    repeat = trigger(again, "repeat_marac")
    assert repeat["fired"] is True
    assert referred["incident_id"] in repeat["detail"]


def test_a_new_incident_more_than_a_year_after_a_marac_referral_is_not_a_repeat(
    client: TestClient, submitter: dict[str, str]
) -> None:
    submit(client, submitter, amy_and_paul("RPT-OLD-1", 400, answers=HIGH_ANSWERS))
    again = submit(client, submitter, amy_and_paul("RPT-OLD-2", 0))
    assert "repeat_marac" not in again["assessment"]["victim"]["marac"]["criteria"]


def test_one_perpetrator_with_two_unconnected_victims_is_serial_and_flags_both_families(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    family_one = submit(
        client,
        submitter,
        make_incident(
            "SER-1",
            days_before(90),
            [
                victim(**AMY, pnc="95/100001A"),
                perpetrator(**PAUL, pnc="86/200002B"),
                child("c1", "Milo", "Okafor", "2017-02-02"),
            ],
            answers=MEDIUM_ANSWERS,
        ),
    )
    assert family_one["assessment"]["perpetrator"]["serial"] is False
    assert not flags_of(session, family_one["incident_id"], "serial_perpetrator")

    family_two = submit(
        client,
        submitter,
        make_incident(
            "SER-2",
            days_before(0),
            [victim(**BETH, nhs="4010232137"), perpetrator(**PAUL, pnc="86/200002B")],
            answers=MEDIUM_ANSWERS,
        ),
    )

    assert family_two["assessment"]["perpetrator"]["serial"] is True
    assert [f["subject_ref"] for f in family_two["flags"] if f["type"] == "serial_perpetrator"] == [
        "p1"
    ]
    # The earlier family's open case is flagged too, pointing at the new incident.
    [flag] = flags_of(session, family_one["incident_id"], "serial_perpetrator")
    assert (flag.subject_ref, flag.subject_kind, flag.agency, flag.status) == (
        "p1",
        "perpetrator",
        "police",
        "open",
    )
    assert family_two["incident_id"] in flag.reason
    assert "2 distinct victims" in flag.reason
    events = list(session.scalars(select(FlagEvent).where(FlagEvent.flag_id == flag.id)))
    assert [e.change for e in events] == ["created"]
    # Its stored assessment is untouched: still version 1, still not serial.
    [stored] = assessments_of(session, family_one["incident_id"])
    assert stored["result"]["perpetrator"]["serial"] is False
    # The change to the other family's case is in the audit log, ids only.
    [altered] = session.scalars(
        select(AuditEvent).where(AuditEvent.operation == "alter", AuditEvent.role == "system")
    ).all()
    assert altered.record_ids == [family_one["incident_id"]]
    assert altered.detail == {
        "pattern_flags_added": 1,
        "after_incident": family_two["incident_id"],
    }

    # A further incident in either family adds no second flag.
    submit(
        client,
        submitter,
        make_incident(
            "SER-3",
            days_before(-1),
            [victim(**BETH, nhs="4010232137"), perpetrator(**PAUL, pnc="86/200002B")],
            answers=MEDIUM_ANSWERS,
        ),
    )
    assert len(flags_of(session, family_one["incident_id"], "serial_perpetrator")) == 1


def test_a_closed_case_of_the_earlier_family_gets_no_serial_flag(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    family_one = submit(client, submitter, amy_and_paul("CLOSED-1", 90, answers=MEDIUM_ANSWERS))
    for flag in flags_of(session, family_one["incident_id"]):
        flag.status = "done"
    session.flush()
    submit(
        client,
        submitter,
        make_incident(
            "CLOSED-2",
            days_before(0),
            [victim(**BETH, nhs="4010232137"), perpetrator(**PAUL, pnc="86/200002B")],
        ),
    )
    assert not flags_of(session, family_one["incident_id"], "serial_perpetrator")


def test_a_child_appearing_in_two_households_has_both_incidents_in_its_history(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    milo = {"given": "Milo", "family": "Okafor", "dob": "2017-02-02", "nhs": "4857773456"}
    first = submit(
        client,
        submitter,
        make_incident(
            "CHILD-1",
            days_before(200),
            [victim(**AMY), perpetrator(**PAUL), child("c1", **milo)],
        ),
    )
    # Another household: a different adult victim and perpetrator; the child is c2 here.
    second = submit(
        client,
        submitter,
        make_incident(
            "CHILD-2",
            days_before(100),
            [
                victim(**BETH),
                perpetrator(**QUINN),
                child("c1", "Ava", "Lindqvist", "2019-08-08"),
                child("c2", **milo),
            ],
        ),
    )
    third = submit(
        client,
        submitter,
        make_incident(
            "CHILD-3", days_before(0), [victim(**BETH), perpetrator(**QUINN), child("c9", **milo)]
        ),
    )

    [stored] = assessments_of(session, third["incident_id"])
    [history] = stored["inputs"]["history"]["children"]
    assert history["person_ref"] == "c9"
    assert history["stored_prior_incident_ids"] == sorted(
        [first["incident_id"], second["incident_id"]]
    )
    figures = [f for f in stored["result"]["history"] if f["subject"] == "c9"]
    assert figures, stored["result"]["history"]
    assert set(figures[0]["incident_ids"]) == {first["incident_id"], second["incident_id"]}


def test_a_late_incident_is_scored_on_earlier_history_and_does_not_rewrite_later_ones(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str], session: Session
) -> None:
    first = submit(client, submitter, amy_and_paul("LATE-1", 200, answers=MEDIUM_ANSWERS))
    latest = submit(client, submitter, amy_and_paul("LATE-3", 0, answers=MEDIUM_ANSWERS))
    assert "potential_escalation" not in latest["assessment"]["victim"]["marac"]["criteria"]
    before = assessments_of(session, latest["incident_id"])

    # A records system catches up with an incident between the two.
    late = submit(client, submitter, amy_and_paul("LATE-2", 100, answers=MEDIUM_ANSWERS))

    # Scored against the history before it only: the first incident, not the latest.
    detail = trigger(late, "potential_escalation")["detail"]
    assert f"stored 1 [{first['incident_id']}]" in detail
    assert latest["incident_id"] not in detail
    # The later incident's assessments are exactly as they were.
    assert assessments_of(session, latest["incident_id"]) == before
    # But its open case now meets potential escalation, so it gets the MARAC flag.
    [flag] = flags_of(session, latest["incident_id"], "marac_referral")
    assert flag.agency == "marac"
    assert late["incident_id"] in flag.reason
    assert "potential_escalation" in flag.reason
    assert {"kind": "late_incident", "incident_id": late["incident_id"]} in flag.because
    # A judgement re-scores it with the fuller history; the flag is already there.
    r = client.post(
        f"/v1/incidents/{latest['incident_id']}/judgements",
        json={"level": "medium", "rationale": "Reviewed after the records caught up."},
        headers=triage,
    )
    assert r.status_code == 201, r.text
    assert "potential_escalation" in r.json()["assessment"]["victim"]["marac"]["criteria"]
    assert len(flags_of(session, latest["incident_id"], "marac_referral")) == 1


def test_a_late_marac_referral_makes_a_later_open_case_a_repeat(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    latest = submit(client, submitter, amy_and_paul("LATE-R-2", 0, answers=MEDIUM_ANSWERS))
    late = submit(client, submitter, amy_and_paul("LATE-R-1", 150, answers=HIGH_ANSWERS))
    assert late["assessment"]["victim"]["marac"]["refer"] is True
    [flag] = flags_of(session, latest["incident_id"], "marac_referral")
    assert "repeat_marac" in flag.reason
    [stored] = assessments_of(session, latest["incident_id"])
    assert stored["result"]["victim"]["marac"]["refer"] is False


def test_a_late_incident_of_another_family_makes_the_perpetrator_serial_on_both_cases(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    recent = submit(client, submitter, amy_and_paul("LATE-S-2", 0, answers=MEDIUM_ANSWERS))
    assert recent["assessment"]["perpetrator"]["serial"] is False
    late = submit(
        client,
        submitter,
        make_incident(
            "LATE-S-1",
            days_before(400),
            [victim(**BETH, nhs="4010232137"), perpetrator(**PAUL, pnc="86/200002B")],
            answers=MEDIUM_ANSWERS,
        ),
    )
    # Its own assessment sees only the history before it: not serial...
    assert late["assessment"]["perpetrator"]["serial"] is False
    # ...but the pattern is known now, so its case gets the flag, and so does the other.
    [own] = [f for f in late["flags"] if f["type"] == "serial_perpetrator"]
    assert recent["incident_id"] in own["reason"]
    [other] = flags_of(session, recent["incident_id"], "serial_perpetrator")
    assert late["incident_id"] in other.reason


def test_the_serial_flag_on_an_earlier_case_survives_its_revision(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    body = amy_and_paul("REV-S-1", 90, answers=MEDIUM_ANSWERS)
    first = submit(client, submitter, body)
    submit(
        client,
        submitter,
        make_incident(
            "REV-S-2",
            days_before(0),
            [victim(**BETH, nhs="4010232137"), perpetrator(**PAUL, pnc="86/200002B")],
        ),
    )
    body["victim_checklist"]["answers"]["stalking_harassment"] = "yes"
    r = client.post(f"/v1/incidents/{first['incident_id']}/revisions", json=body, headers=submitter)
    assert r.status_code == 201, r.text
    [flag] = flags_of(session, first["incident_id"], "serial_perpetrator")
    assert flag.needs_review is False
