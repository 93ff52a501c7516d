"""The flag routes: exact flag sets and due times through the API, the lifecycle with
ETags, notes and history, who sees which flags, reassessment, overdue and paging.

All data is invented (tests/data/README.md). Times are worked out by hand on the
Europe/London calendar (app/flags/calendar.py documents the rules).
"""

from __future__ import annotations

import datetime as dt
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
import structlog
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.chain import seal_all
from app.audit.models import AuditEvent
from app.config import Settings
from app.db import Database
from app.flags.models import Flag
from tests.conftest import KeyMaker, build_app
from tests.flags.api_helpers import (
    AREA_B,
    flags_of,
    incident_at,
    list_flags,
    one_flag,
    patch_flag,
    post_incident,
    revise,
    utc,
)

PROBLEM = "application/problem+json"


def summary(flags: list[dict[str, Any]]) -> list[tuple[str, str, str, str, int, dt.datetime]]:
    return sorted(
        (
            f["type"],
            f["agency"],
            f["subject_ref"],
            f["subject_kind"],
            f["priority"],
            utc(f["due_at"]),
        )
        for f in flags
    )


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


def expected_example_flags(
    *, reported: str, next_cob: str, school: str, ten_days: str, three_m: str, twelve_m: str
) -> list[tuple[str, str, str, str, int, dt.datetime]]:
    """The example incident's flags under the default rules (version 2, docs/rules.md),
    with its due times: a severe child's referral 4 hours and the strangulation medical 24
    hours after the report, elapsed, whatever the clock does in between."""
    four_hours = utc(reported) + dt.timedelta(hours=4)
    one_day = utc(reported) + dt.timedelta(hours=24)
    return sorted(
        [
            ("children_social_care_referral", "csc", "c1", "child", 1, four_hours),
            ("children_social_care_referral", "csc", "c2", "child", 1, four_hours),
            ("strangulation_medical", "health", "v1", "victim", 1, one_day),
            ("idva_referral", "idva", "v1", "victim", 1, utc(next_cob)),
            ("marac_referral", "marac", "v1", "victim", 1, utc(next_cob)),
            ("operation_encompass", "school", "c1", "child", 2, utc(school)),
            ("child_not_spoken_to", "police", "c1", "child", 2, utc(next_cob)),
            # Priority 1: the victim is high and the perpetrator serial (v2 rule 9).
            ("perpetrator_action", "police", "p1", "perpetrator", 1, utc(next_cob)),
            ("pregnancy_health", "health", "v1", "victim", 2, utc(next_cob)),
            ("separation_escalation", "idva", "v1", "victim", 2, utc(next_cob)),
            ("serial_perpetrator", "police", "p1", "perpetrator", 2, utc(next_cob)),
            ("child_recovery_support", "health", "c1", "child", 3, utc(ten_days)),
            ("long_term_review", "csc", "v1", "victim", 4, utc(three_m)),
            ("long_term_review", "csc", "v1", "victim", 4, utc(twelve_m)),
        ]
    )


# --------------------------------------------------------------------------- flag sets


def test_example_incident_has_exactly_the_contract_flags_with_agencies_and_due_times(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    # Reported Friday 20 November 2026 22:31 GMT (the contract's example).
    incident_id = post_incident(
        client, submitter, incident_at("2026-11-20T22:31:00Z", occurred_at="2026-11-20T22:15:00Z")
    )
    flags = flags_of(client, triage, incident_id)
    assert summary(flags) == expected_example_flags(
        reported="2026-11-20T22:31:00Z",  # Friday evening
        next_cob="2026-11-23T17:00:00Z",  # Monday close of business
        school="2026-11-23T08:30:00Z",  # before school on Monday
        ten_days="2026-12-04T17:00:00Z",
        three_m="2027-02-22T09:00:00Z",  # 20 Feb is a Saturday: Monday
        twelve_m="2027-11-22T09:00:00Z",  # 20 Nov 2027 is a Saturday: Monday
    )
    assert all(f["status"] == "open" and not f["needs_review"] for f in flags)
    assert {f["incident_id"] for f in flags} == {incident_id}


def test_friday_2300_incident_is_due_monday_morning_at_school_and_monday_cob_elsewhere(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    # Friday 13 November 2026, 23:00 GMT.
    incident_id = post_incident(
        client, submitter, incident_at("2026-11-13T23:00:00Z", occurred_at="2026-11-13T22:40:00Z")
    )
    assert summary(flags_of(client, triage, incident_id)) == expected_example_flags(
        reported="2026-11-13T23:00:00Z",  # Friday 23:00: the emergency duty team
        next_cob="2026-11-16T17:00:00Z",
        school="2026-11-16T08:30:00Z",
        ten_days="2026-11-27T17:00:00Z",
        three_m="2027-02-15T09:00:00Z",  # 13 Feb 2027 is a Saturday
        twelve_m="2027-11-15T09:00:00Z",  # 13 Nov 2027 is a Saturday
    )


def test_saturday_night_before_the_clocks_go_back_is_due_in_gmt_on_monday(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    # Saturday 24 October 2026, 23:00 BST (22:00Z); the clocks go back at 02:00 on Sunday 25.
    incident_id = post_incident(client, submitter, incident_at("2026-10-24T22:00:00Z"))
    assert summary(flags_of(client, triage, incident_id)) == expected_example_flags(
        reported="2026-10-24T22:00:00Z",  # + 4 h elapsed = 02:00 GMT, after the change
        next_cob="2026-10-26T17:00:00Z",  # Monday 17:00 GMT
        school="2026-10-26T08:30:00Z",  # Monday 08:30 GMT
        ten_days="2026-11-06T17:00:00Z",
        three_m="2027-01-25T09:00:00Z",  # 24 Jan 2027 is a Sunday
        twelve_m="2027-10-25T08:00:00Z",  # 24 Oct 2027 is a Sunday; Monday 09:00 BST
    )


def test_last_saturday_of_october_incident_is_due_on_monday_in_gmt(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    # Saturday 31 October 2026 (the month's last Saturday), 10:00 GMT.
    incident_id = post_incident(client, submitter, incident_at("2026-10-31T10:00:00Z"))
    assert summary(flags_of(client, triage, incident_id)) == expected_example_flags(
        reported="2026-10-31T10:00:00Z",
        next_cob="2026-11-02T17:00:00Z",
        school="2026-11-02T08:30:00Z",
        ten_days="2026-11-13T17:00:00Z",
        three_m="2027-02-01T09:00:00Z",  # 31 Jan 2027 is a Sunday
        twelve_m="2027-11-01T09:00:00Z",  # 31 Oct 2027 is a Sunday (GMT from that day)
    )


# --------------------------------------------------------------------------- lifecycle


@pytest.fixture
def example(client: TestClient, submitter: dict[str, str], triage: dict[str, str]) -> str:
    return post_incident(client, submitter, incident_at("2026-11-20T22:31:00Z"))


def test_get_flag_returns_the_flag_with_a_strong_etag_header(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    r = client.get(f"/v1/flags/{flag['id']}", headers=triage)
    assert r.status_code == 200
    assert r.headers["ETag"] == r.json()["etag"] == flag["etag"]
    assert not r.headers["ETag"].startswith("W/")
    # One flag also carries its notifications' status (none here: no subscription).
    assert r.json() == flag | {"overdue": r.json()["overdue"], "notification_status": None}


def test_flag_moves_forward_open_acknowledged_in_progress_done_with_new_etags(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    etags = [flag["etag"]]
    for status in ("acknowledged", "in_progress", "done"):
        r = patch_flag(client, triage, flag, {"status": status})
        assert r.status_code == 200, r.text
        flag = r.json()
        assert flag["status"] == status
        assert r.headers["ETag"] == flag["etag"]
        etags.append(flag["etag"])
    assert len(set(etags)) == 4
    # Done is final: it no longer appears among the open flags.
    assert flag["id"] not in {f["id"] for f in flags_of(client, triage, example)}
    done = flags_of(client, triage, example, status="done")
    assert [f["id"] for f in done] == [flag["id"]]


def test_a_step_may_be_skipped_but_never_taken_backwards(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "marac_referral")
    r = patch_flag(client, triage, flag, {"status": "in_progress"})
    assert r.status_code == 200
    flag = r.json()
    back = patch_flag(client, triage, flag, {"status": "acknowledged"})
    assert back.status_code == 409
    assert back.headers["content-type"] == PROBLEM
    assert back.json()["current_status"] == "in_progress"
    assert back.json()["allowed"] == ["done", "not_required"]
    reopened = patch_flag(
        client,
        triage,
        patch_flag(client, triage, flag, {"status": "done"}).json(),
        {"status": "open"},
    )
    assert reopened.status_code == 409


def test_missing_if_match_is_428_and_changes_nothing_and_a_star_matches_the_flag(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    r = client.patch(f"/v1/flags/{flag['id']}", json={"status": "acknowledged"}, headers=triage)
    assert r.status_code == 428
    assert r.headers["content-type"] == PROBLEM
    assert client.get(f"/v1/flags/{flag['id']}", headers=triage).json()["status"] == "open"
    # RFC 9110 §13.1.1: "*" matches any current representation, so the change is made.
    star = client.patch(
        f"/v1/flags/{flag['id']}",
        json={"status": "acknowledged"},
        headers={**triage, "If-Match": "*"},
    )
    assert star.status_code == 200, star.text
    assert star.json()["status"] == "acknowledged"


def test_a_malformed_if_match_is_400_and_a_weak_tag_412_that_says_why(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    url = f"/v1/flags/{flag['id']}"
    bare = flag["etag"].strip('"')
    for malformed in (bare, f'"{bare}', f"{flag['etag']} x", "W/"):
        r = client.patch(
            url, json={"status": "acknowledged"}, headers={**triage, "If-Match": malformed}
        )
        assert r.status_code == 400, malformed
        assert r.json()["errors"] == [
            {"loc": ["header", "If-Match"], "msg": "malformed entity tag"}
        ]
    weak = client.patch(
        url, json={"status": "acknowledged"}, headers={**triage, "If-Match": f"W/{flag['etag']}"}
    )
    assert weak.status_code == 412
    assert "weak" in weak.json()["detail"]
    assert weak.headers["ETag"] == flag["etag"]
    # A list that holds the current tag matches.
    listed = client.patch(
        url,
        json={"status": "acknowledged"},
        headers={**triage, "If-Match": f'"old.1", W/"x", {flag["etag"]}'},
    )
    assert listed.status_code == 200, listed.text


def test_stale_etag_is_412_with_the_current_flag_and_its_etag(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    first = patch_flag(client, triage, flag, {"status": "acknowledged"})
    assert first.status_code == 200
    # A second screen still holds the original ETag.
    second = patch_flag(client, triage, flag, {"status": "not_required", "status_reason": "x"})
    assert second.status_code == 412
    assert second.headers["content-type"] == PROBLEM
    body = second.json()
    assert body["current"]["status"] == "acknowledged"
    assert body["current"]["etag"] == first.json()["etag"] == second.headers["ETag"]
    assert client.get(f"/v1/flags/{flag['id']}", headers=triage).json()["status"] == "acknowledged"


def test_a_weak_etag_never_matches(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    r = patch_flag(client, triage, flag, {"status": "acknowledged"}, etag="W/" + flag["etag"])
    assert r.status_code == 412
    # A list of tags matches when one of them is current.
    ok = patch_flag(
        client, triage, flag, {"status": "acknowledged"}, etag=f'"stale.1", {flag["etag"]}'
    )
    assert ok.status_code == 200


def test_not_required_needs_a_reason(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "separation_escalation")
    missing = patch_flag(client, triage, flag, {"status": "not_required"})
    assert missing.status_code == 422
    blank = patch_flag(client, triage, flag, {"status": "not_required", "status_reason": "  "})
    assert blank.status_code == 422
    r = patch_flag(
        client,
        triage,
        flag,
        {"status": "not_required", "status_reason": "Already held by the IDVA service"},
    )
    assert r.status_code == 200
    assert r.json()["status"] == "not_required"
    assert r.json()["status_reason"] == "Already held by the IDVA service"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"status": "closed"},
        {"status": "done", "colour": "red"},
        {"status": None},
        {"status_reason": "reason without a status"},
        {"needs_review": True},
        {"assignee": "x" * 201},
    ],
)
def test_invalid_change_bodies_are_422(
    client: TestClient, triage: dict[str, str], example: str, body: dict[str, Any]
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    r = patch_flag(client, triage, flag, body)
    assert r.status_code == 422
    assert r.headers["content-type"] == PROBLEM


def test_assignee_is_set_and_cleared_and_a_closed_flag_is_not_reassigned(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    flag = patch_flag(client, triage, flag, {"assignee": "mash-team-east"}).json()
    assert flag["assignee"] == "mash-team-east"
    assert flag["status"] == "open"
    flag = patch_flag(client, triage, flag, {"assignee": None}).json()
    assert flag["assignee"] is None
    flag = patch_flag(client, triage, flag, {"status": "done"}).json()
    r = patch_flag(client, triage, flag, {"assignee": "someone-else"})
    assert r.status_code == 409


def test_history_keeps_every_change_with_who_when_from_and_to(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "marac_referral")
    flag = patch_flag(client, triage, flag, {"status": "acknowledged", "assignee": "w-17"}).json()
    flag = patch_flag(client, triage, flag, {"status": "done", "status_reason": "Referred"}).json()
    r = client.get(f"/v1/flags/{flag['id']}/history", headers=triage)
    assert r.status_code == 200
    events = r.json()["events"]
    triples = [(e["change"], e["from"], e["to"]) for e in events]
    assert triples[0] == ("created", None, "open")
    # One PATCH, two changes: recorded at the same instant, in either order.
    assert sorted(triples[1:3]) == [("assignee", None, "w-17"), ("status", "open", "acknowledged")]
    assert triples[3:] == [("status", "acknowledged", "done")]
    changes = [e for e in events if e["change"] != "created"]
    assert {e["role"] for e in changes} == {"triage"}
    assert len({e["principal_id"] for e in changes}) == 1
    assert events[-1]["note"] == "Referred"
    assert all(utc(e["at"]).tzinfo is not None for e in events)


def test_notes_join_the_history_without_changing_the_flag_and_are_never_logged(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "operation_encompass", "c1")
    text = "Invented note: the school lead rang back and will see the child first thing."
    with structlog.testing.capture_logs() as logs:
        r = client.post(f"/v1/flags/{flag['id']}/notes", json={"text": text}, headers=triage)
    assert r.status_code == 201, r.text
    assert r.json()["change"] == "note"
    assert r.json()["note"] == text
    assert text not in repr(logs)
    after = client.get(f"/v1/flags/{flag['id']}", headers=triage)
    assert after.headers["ETag"] == flag["etag"]  # a note is not a change to the flag
    history = client.get(f"/v1/flags/{flag['id']}/history", headers=triage).json()["events"]
    assert [e["note"] for e in history if e["change"] == "note"] == [text]
    too_long = client.post(
        f"/v1/flags/{flag['id']}/notes", json={"text": "x" * 4001}, headers=triage
    )
    assert too_long.status_code == 422
    extra = client.post(
        f"/v1/flags/{flag['id']}/notes", json={"text": "ok", "pinned": True}, headers=triage
    )
    assert extra.status_code == 422


def test_reads_and_changes_are_in_the_audit_log(
    client: TestClient, session: Session, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    patch_flag(client, triage, flag, {"status": "acknowledged"})
    seal_all(session)  # reads' events wait to be chained on PostgreSQL
    # In the order they happened: a read's event may be chained after a later change's.
    events = session.scalars(
        select(AuditEvent)
        .where(AuditEvent.record_type == "flag")
        .order_by(AuditEvent.occurred_at, AuditEvent.seq)
    ).all()
    assert [e.operation for e in events][-2:] == ["consult", "alter"]
    assert str(flag["id"]) in events[-1].record_ids
    assert events[-2].purpose == "triage"


def test_reading_flags_needs_a_purpose(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    no_purpose = {"Authorization": triage["Authorization"]}
    assert client.get("/v1/flags", headers=no_purpose).status_code == 400
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    assert client.get(f"/v1/flags/{flag['id']}", headers=no_purpose).status_code == 400
    assert client.get(f"/v1/flags/{flag['id']}/history", headers=no_purpose).status_code == 400


# --------------------------------------------------------------------------- visibility


def test_an_agency_sees_and_works_only_its_own_flags_in_its_area(
    client: TestClient, make_key: KeyMaker, triage: dict[str, str], example: str
) -> None:
    school = make_key("agency", agency="school", schools=["100123"])  # c1's school
    flags = flags_of(client, triage, example)
    mine = list_flags(client, school)
    assert [(f["type"], f["subject_ref"]) for f in mine] == [("operation_encompass", "c1")]
    encompass = mine[0]
    assert client.get(f"/v1/flags/{encompass['id']}", headers=school).status_code == 200
    # Another agency's flag does not exist for the school.
    csc_flag = one_flag(flags, "children_social_care_referral", "c1")
    assert client.get(f"/v1/flags/{csc_flag['id']}", headers=school).status_code == 404
    assert patch_flag(client, school, csc_flag, {"status": "acknowledged"}).status_code == 404
    note = client.post(f"/v1/flags/{csc_flag['id']}/notes", json={"text": "x"}, headers=school)
    assert note.status_code == 404
    assert client.get(f"/v1/flags/{csc_flag['id']}/history", headers=school).status_code == 404
    # Asking for another agency's flags gives nothing.
    assert list_flags(client, school, agency="csc") == []
    # Its own flag it works.
    done = patch_flag(client, school, encompass, {"status": "done"})
    assert done.status_code == 200
    # The same agency in another area sees nothing of area A.
    school_b = make_key("agency", agency="school", areas=[AREA_B], schools=["100123"])
    assert list_flags(client, school_b) == []
    assert client.get(f"/v1/flags/{encompass['id']}", headers=school_b).status_code == 404


def test_an_agency_read_is_also_logged_as_a_disclosure_to_it(
    client: TestClient, session: Session, make_key: KeyMaker, example: str
) -> None:
    school = make_key("agency", agency="school", schools=["100123"])  # c1's school
    list_flags(client, school)
    seal_all(session)
    last = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc()).limit(2)).all()
    assert {e.operation for e in last} == {"consult", "disclose"}
    assert [e.recipients for e in last if e.operation == "disclose"] == [["agency:school"]]


def test_triage_sees_only_its_areas_and_auditors_read_but_do_not_work(
    client: TestClient, make_key: KeyMaker, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    triage_b = make_key("triage", areas=[AREA_B])
    assert list_flags(client, triage_b) == []
    assert client.get(f"/v1/flags/{flag['id']}", headers=triage_b).status_code == 404
    assert patch_flag(client, triage_b, flag, {"status": "done"}).status_code == 404
    auditor = make_key("auditor")
    assert client.get(f"/v1/flags/{flag['id']}", headers=auditor).status_code == 200
    assert client.get(f"/v1/flags/{flag['id']}/history", headers=auditor).status_code == 200
    assert patch_flag(client, auditor, flag, {"status": "done"}).status_code == 403
    submitter_key = make_key("submitter")
    assert client.get("/v1/flags", headers=submitter_key).status_code == 403
    assert client.get(f"/v1/flags/{flag['id']}", headers=submitter_key).status_code == 403


# --------------------------------------------------------------------------- reassessment


def test_a_revision_adds_a_newly_due_flag_and_leaves_the_worked_ones_as_they_were(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    body = incident_at("2026-11-20T22:31:00Z")
    body["persons"][2]["child"]["spoken_to_by_officer"] = True  # c1 was spoken to
    incident_id = post_incident(client, submitter, body)
    before = flags_of(client, triage, incident_id)
    assert "child_not_spoken_to" not in {f["type"] for f in before}
    worked = one_flag(before, "idva_referral")
    worked = patch_flag(client, triage, worked, {"status": "acknowledged"}).json()
    worked = patch_flag(client, triage, worked, {"status": "in_progress", "assignee": "i-3"}).json()

    # The next day the record is corrected: the officer did not speak to c1 after all.
    body["persons"][2]["child"]["spoken_to_by_officer"] = False
    revise(client, submitter, incident_id, body)

    after = {f["id"]: f for f in flags_of(client, triage, incident_id)}
    added = [f for f in after.values() if f["id"] not in {b["id"] for b in before}]
    assert [(f["type"], f["subject_ref"], f["status"]) for f in added] == [
        ("child_not_spoken_to", "c1", "open")
    ]
    assert after[worked["id"]] == worked | {"overdue": after[worked["id"]]["overdue"]}
    for flag in before:
        if flag["id"] != worked["id"]:
            kept = after[flag["id"]]
            assert (kept["status"], kept["etag"], kept["due_at"]) == (
                flag["status"],
                flag["etag"],
                flag["due_at"],
            )


def test_a_revision_that_removes_a_condition_marks_the_flag_for_review_never_deletes_it(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    body = incident_at("2026-11-20T22:31:00Z")
    incident_id = post_incident(client, submitter, body)
    separation = one_flag(flags_of(client, triage, incident_id), "separation_escalation")
    separation = patch_flag(client, triage, separation, {"status": "in_progress"}).json()

    body["relationship"]["separation"] = {"status": "historic", "date": "2019-01-01"}
    body["victim_checklist"]["answers"]["separation_past_year"] = "no"
    revise(client, submitter, incident_id, body)

    kept = one_flag(flags_of(client, triage, incident_id), "separation_escalation")
    assert kept["id"] == separation["id"]
    assert kept["status"] == "in_progress"  # never closed by a reassessment
    assert kept["needs_review"] is True
    assert kept["etag"] != separation["etag"]
    assert [f["id"] for f in list_flags(client, triage, needs_review=True)] == [kept["id"]]
    history = client.get(f"/v1/flags/{kept['id']}/history", headers=triage).json()["events"]
    assert history[-1]["change"] == "review_marked"
    assert history[-1]["role"] == "system"

    # A person reviews it and keeps it.
    cleared = patch_flag(client, triage, kept, {"needs_review": False})
    assert cleared.status_code == 200
    assert cleared.json()["needs_review"] is False
    assert cleared.json()["status"] == "in_progress"


# --------------------------------------------------------------------------- listings


def test_listing_is_ordered_by_priority_then_due_time_and_filters_combine(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str], example: str
) -> None:
    flags = list_flags(client, triage)
    keys = [(f["priority"], f["due_at"], f["id"]) for f in flags]
    assert keys == sorted(keys)
    assert {f["type"] for f in list_flags(client, triage, type="long_term_review")} == {
        "long_term_review"
    }
    children = list_flags(client, triage, subject="child")
    assert {f["subject_kind"] for f in children} == {"child"}
    assert len(children) == 5
    police = list_flags(client, triage, agency=["police", "health"], type="serial_perpetrator")
    assert [(f["type"], f["agency"]) for f in police] == [("serial_perpetrator", "police")]
    due_early = list_flags(client, triage, due_before="2026-11-22T00:00:00Z")
    assert {f["type"] for f in due_early} == {
        "children_social_care_referral",
        "strangulation_medical",
    }
    late = list_flags(client, triage, due_after="2027-01-01T00:00:00+00:00")
    assert [f["type"] for f in late] == ["long_term_review", "long_term_review"]
    assert list_flags(client, triage, area=AREA_B) == []
    naive = client.get("/v1/flags", params={"due_before": "2026-11-21T00:00:00"}, headers=triage)
    assert naive.status_code == 422


def test_a_flag_past_its_due_time_is_overdue_in_every_listing(
    client: TestClient, session: Session, triage: dict[str, str], example: str
) -> None:
    flags = flags_of(client, triage, example)
    # Pin the clock's effect: two flags far in the past, every other far in the future.
    past = [one_flag(flags, "idva_referral")["id"], one_flag(flags, "marac_referral")["id"]]
    session.execute(update(Flag).values(due_at=utc("2099-01-01T00:00:00Z")))
    session.execute(
        update(Flag)
        .where(Flag.id.in_([uuid.UUID(i) for i in past]))
        .values(due_at=utc("2020-01-01T09:00:00Z"))
    )
    session.flush()
    flags = flags_of(client, triage, example)
    assert sorted(f["id"] for f in flags if f["overdue"]) == sorted(past)
    overdue = list_flags(client, triage, overdue="true")
    assert sorted(f["id"] for f in overdue) == sorted(past)
    assert all(f["overdue"] for f in overdue)
    not_overdue = list_flags(client, triage, overdue="false")
    assert len(not_overdue) == len(flags) - 2
    single = client.get(f"/v1/flags/{past[0]}", headers=triage).json()
    assert single["overdue"] is True
    # Closed flags are never overdue.
    done = patch_flag(client, triage, single, {"status": "done"}).json()
    assert done["overdue"] is False


def test_pages_stay_stable_while_new_flags_arrive(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str], example: str
) -> None:
    before = {f["id"] for f in list_flags(client, triage)}
    r = client.get("/v1/flags", params={"limit": 4}, headers=triage)
    first = r.json()
    assert len(first["items"]) == 4
    assert first["next_cursor"]
    # New flags arrive, several of which sort before the cursor (priority 1, due earlier).
    post_incident(client, submitter, incident_at("2026-11-19T10:00:00Z"))
    seen = [f["id"] for f in first["items"]]
    cursor = first["next_cursor"]
    last_key = None
    while cursor:
        page = client.get("/v1/flags", params={"limit": 4, "cursor": cursor}, headers=triage).json()
        for f in page["items"]:
            key = (f["priority"], f["due_at"], f["id"])
            assert last_key is None or key > last_key
            last_key = key
        seen += [f["id"] for f in page["items"]]
        cursor = page["next_cursor"]
    assert len(seen) == len(set(seen))  # nothing twice
    assert before <= set(seen)  # nothing that existed was skipped


def test_a_cursor_is_opaque_and_bound_to_its_query(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    first = client.get("/v1/flags", params={"limit": 2}, headers=triage).json()
    other = client.get(
        "/v1/flags",
        params={"limit": 2, "cursor": first["next_cursor"], "agency": "csc"},
        headers=triage,
    )
    assert other.status_code == 400
    for junk in ("not-a-cursor", "eyJ2IjoxfQ", "!!!"):
        r = client.get("/v1/flags", params={"cursor": junk}, headers=triage)
        assert r.status_code == 400
        assert r.headers["content-type"] == PROBLEM
    assert client.get("/v1/flags", params={"limit": 201}, headers=triage).status_code == 422


def test_a_retried_note_with_the_same_idempotency_key_is_added_once(
    client: TestClient, triage: dict[str, str], example: str
) -> None:
    flag = one_flag(flags_of(client, triage, example), "idva_referral")
    headers = {**triage, "Idempotency-Key": "note-retry-1"}
    url = f"/v1/flags/{flag['id']}/notes"
    first = client.post(url, json={"text": "Invented note"}, headers=headers)
    again = client.post(url, json={"text": "Invented note"}, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert again.json() == first.json()
    history = client.get(f"/v1/flags/{flag['id']}/history", headers=triage).json()["events"]
    assert [e["change"] for e in history].count("note") == 1


def test_two_screens_changing_one_flag_at_once_never_both_succeed(
    fresh_database: Database, make_key_fresh: Any
) -> None:
    """Real commits and concurrent requests: the conditional UPDATE lets exactly one win."""
    settings = Settings(environment="test", database_url=fresh_database.url)
    app = build_app(settings, fresh_database, None)
    submitter = make_key_fresh(fresh_database, "submitter")
    triage = make_key_fresh(fresh_database, "triage")
    with TestClient(app, raise_server_exceptions=False) as client:
        incident_id = post_incident(client, submitter, incident_at("2030-04-01T10:00:00Z"))
        flag = one_flag(flags_of(client, triage, incident_id), "marac_referral")
        barrier = threading.Barrier(4)

        def change(status: str) -> int:
            barrier.wait()
            body = {"status": status, "status_reason": "Invented reason"}
            return int(patch_flag(client, triage, flag, body).status_code)

        with ThreadPoolExecutor(4) as pool:
            codes = sorted(pool.map(change, ["done", "not_required", "done", "not_required"]))
        assert codes == [200, 412, 412, 412]
        final = client.get(f"/v1/flags/{flag['id']}", headers=triage).json()
        history = client.get(f"/v1/flags/{flag['id']}/history", headers=triage).json()["events"]
        assert [e["change"] for e in history] == ["created", "status"]
        assert history[-1]["to"] == final["status"]
