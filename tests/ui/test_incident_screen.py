"""The incident screen: the API's incident, assessment, flags and disclosures as one page,
in scope, audited with the chosen purpose; the judgement and sharing-decision forms."""

from __future__ import annotations

import copy
import re
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent, AuditPendingEvent
from tests.conftest import KeyMaker
from tests.ui.conftest import SignIn, csrf_of

_KEY = re.compile(r'name="idempotency_key" value="([^"]+)"')


def _submit(client: TestClient, submitter: dict[str, str], incident: dict[str, Any]) -> str:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    return str(created.json()["incident_id"])


def _low_risk(incident: dict[str, Any]) -> dict[str, Any]:
    """The example made low risk: the victim standard, the children below severe."""
    low = copy.deepcopy(incident)
    low["source"]["reference"] = "PPN-2026-009001"
    answers = low["victim_checklist"]["answers"]
    for item in answers:
        answers[item] = "no"
    low["victim_checklist"]["comments"] = {}
    for fact in ("strangulation", "injury_to_victim", "physical_violence", "coercive_control"):
        low["circumstances"][fact] = False
    low["relationship"]["separation"] = {"status": "none"}
    low["victim_history"]["prior_da_incidents_12m"] = 0
    low["officer_assessment"]["victim_perception"] = None
    low["persons"] = [p for p in low["persons"] if p["ref"] != "c2"]
    child = next(p for p in low["persons"] if p["ref"] == "c1")
    child["child"].update(present=False, witnessed=False, intervened=False)
    return low


def _levels(client: TestClient, incident_id: str, headers: dict[str, str]) -> dict[str, Any]:
    reply = client.get(f"/v1/incidents/{incident_id}/assessments", headers=headers)
    latest = reply.json()["assessments"][0]
    return {
        "version": latest["version"],
        "v1": latest["victim"]["level"],
        **{c["person_ref"]: c["level"] for c in latest["children"]},
    }


def _events(session: Session, route_start: str) -> list[AuditPendingEvent]:
    return list(
        session.scalars(
            select(AuditPendingEvent).where(AuditPendingEvent.route.startswith(route_start))
        ).all()
    )


def _written(session: Session, route: str) -> list[AuditEvent]:
    return list(session.scalars(select(AuditEvent).where(AuditEvent.route == route)).all())


# --------------------------------------------------------------------------- reading


def test_the_page_shows_victim_children_perpetrator_and_every_flag(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
    session: Session,
) -> None:
    incident_id = _submit(client, submitter, incident)
    sign_in("triage", purpose="marac:MARAC-2026-0147")
    page = client.get(f"/ui/incidents/{incident_id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count("<h1") == 1
    # The victim: level, MARAC referral, why.
    assert re.search(r'id="victim-level"><span class="level rank-3">High</span>', html)
    assert "Refer to MARAC" in html
    assert "Visible high risk" in html
    assert "Non-fatal strangulation or suffocation" in html
    assert "seen by the officer" in html
    # Each child: level, recommended response, the child's own account (triage sees it).
    assert re.search(r'id="child-level-c1"><span class="level rank-4">Severe</span>', html)
    assert re.search(r'id="child-level-c2"><span class="level rank-4">Severe</span>', html)
    assert 'id="child-response-c1">Strategy discussion' in html
    assert 'id="account-c1"' in html
    assert "hid in his room afterwards" in html
    assert "Unborn child" in html
    # The perpetrator and the summary.
    assert "Daniel Crewe" in html
    assert 'id="serial"><strong>Yes</strong>' in html
    assert "Threats to kill" in html
    assert 'id="summary-text">High risk: 15 of 24' in html
    # Every API call the page made is audited with the purpose chosen on screen.
    for route in (
        "GET /v1/incidents/{incident_id}",
        "GET /v1/incidents/{incident_id}/assessments",
        "GET /v1/flags",
        "GET /v1/incidents/{incident_id}/disclosures",
    ):
        events = [e for e in _events(session, route) if e.route == route and e.role == "triage"]
        assert events, route
        assert {e.purpose for e in events} == {"marac:MARAC-2026-0147"}, route
        assert {e.operation for e in events} == {"consult"}, route
    # Every flag, linked to its page, with an overdue tag.
    flags = client.get(
        "/v1/flags",
        params={"incident_id": incident_id, "limit": 200},
        headers=make_key("triage"),
    ).json()["items"]
    assert flags
    for flag in flags:
        assert f'href="/ui/flags/{flag["id"]}"' in html
    assert "Children&#39;s social care referral" in html
    assert 'class="tag overdue">Overdue' in html
    # Forms for triage, with CSRF and an idempotency key each.
    assert 'id="sharing"' in html
    assert 'id="judgement"' in html
    assert _KEY.search(html) is not None
    assert "Already the highest level" in html  # every subject of the example is at the top
    # Links to each person's chronology.
    record = client.get(f"/v1/incidents/{incident_id}", headers=make_key("triage")).json()
    for person in record["persons"]:
        assert f'href="/ui/persons/{person["person_id"]}"' in html


def test_an_incident_in_another_area_is_a_404_page(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = _submit(client, submitter, incident)
    sign_in("triage", areas=["E09000099"])
    page = client.get(f"/ui/incidents/{incident_id}")
    assert page.status_code == 404
    assert "<html" in page.text
    assert "Amira" not in page.text
    assert "Hale" not in page.text
    assert client.get("/ui/incidents/not-an-id").status_code == 404


def test_a_school_sees_its_pupil_only_without_forms_or_the_childs_account(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    incident_id = _submit(client, submitter, incident)
    sign_in("agency", agency="school", schools=["100123"])
    page = client.get(f"/ui/incidents/{incident_id}")
    assert page.status_code == 200, page.text
    html = page.text
    assert "Leo Hale" in html
    assert "Amira" not in html
    assert "Crewe" not in html
    assert "hid in his room" not in html  # a school never receives the child's account
    assert "Operation Encompass notification" in html
    assert 'id="sharing"' not in html
    assert 'id="judgement"' not in html
    assert 'class="level' not in html  # no assessment for an agency
    assert "/ui/persons/" not in html  # chronologies are for triage and auditors
    # What the school was shown is a disclosure to it, with the purpose chosen on screen.
    shown = _events(session, "GET /v1/incidents/{incident_id}")
    assert {(e.operation, e.purpose) for e in shown if e.role == "agency"} == {
        ("consult", "triage"),
        ("disclose", "triage"),
    }


def test_childrens_social_care_sees_the_childs_own_account(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = _submit(client, submitter, incident)
    sign_in("agency", agency="csc")
    page = client.get(f"/ui/incidents/{incident_id}")
    assert page.status_code == 200
    assert "hid in his room afterwards" in page.text
    assert 'id="judgement"' not in page.text


def test_another_school_gets_a_404(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = _submit(client, submitter, incident)
    sign_in("agency", agency="school", schools=["999999"])
    page = client.get(f"/ui/incidents/{incident_id}")
    assert page.status_code == 404
    assert "Leo" not in page.text


def test_an_auditor_reads_without_forms(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = _submit(client, submitter, incident)
    sign_in("auditor", purpose="audit")
    page = client.get(f"/ui/incidents/{incident_id}")
    assert page.status_code == 200
    assert 'id="victim-level"' in page.text
    assert 'id="disclosure-list"' in page.text
    assert 'id="sharing"' not in page.text
    assert 'id="judgement"' not in page.text


def test_other_families_cases_link_to_their_incidents(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    first = _submit(client, submitter, incident)
    other = copy.deepcopy(incident)
    other["source"]["reference"] = "PPN-2026-004999"
    other["occurred_at"], other["reported_at"] = "2026-11-24T20:00:00Z", "2026-11-24T20:30:00Z"
    victim = next(p for p in other["persons"] if p["ref"] == "v1")
    victim.update(
        name={"given": "Nadia", "family": "Okoro"},
        date_of_birth="1991-01-15",
        identifiers=[{"scheme": "pnc", "value": "91/220011C"}],
    )
    other["persons"] = [p for p in other["persons"] if p["role"] != "child"]
    second = _submit(client, submitter, other)
    sign_in("triage")
    page = client.get(f"/ui/incidents/{second}")
    assert page.status_code == 200
    other_cases = page.text.split('id="other-cases">', 1)[1].split("</dd>", 1)[0]
    assert f'href="/ui/incidents/{first}"' in other_cases


def test_reading_needs_a_sign_in_and_a_purpose(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = _submit(client, submitter, incident)
    reply = client.get(f"/ui/incidents/{incident_id}", follow_redirects=False)
    assert reply.status_code == 303
    assert "/ui/sign-in" in reply.headers["location"]
    sign_in("triage", purpose=None)
    reply = client.get(f"/ui/incidents/{incident_id}", follow_redirects=False)
    assert reply.status_code == 303
    assert "/ui/purpose" in reply.headers["location"]


# --------------------------------------------------------------------------- judgement


def test_a_judgement_raises_the_level_and_shows_it(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
    session: Session,
) -> None:
    incident_id = _submit(client, submitter, _low_risk(incident))
    reader = make_key("triage")
    before = _levels(client, incident_id, reader)
    assert before["v1"] != "high"
    sign_in("triage")
    page = client.get(f"/ui/incidents/{incident_id}")
    html = page.text
    assert 'id="judge-v1"' in html
    # Only levels above the current one are offered.
    assert 'id="level-v1-high"' in html
    assert f'id="level-v1-{before["v1"]}"' not in html
    token = csrf_of(html)
    key = _KEY.search(html)
    assert key is not None
    form = {
        "csrf_token": token,
        "idempotency_key": key.group(1),
        "subject_ref": "v1",
        "level": "high",
        "rationale": "Disclosed further threats after the officer left.",
    }
    reply = client.post(
        f"/ui/incidents/{incident_id}/judgements", data=form, follow_redirects=False
    )
    assert reply.status_code == 303, reply.text.split("error-summary")[-1][:800]
    assert reply.headers["location"] == f"/ui/incidents/{incident_id}?judged=v1#subject-v1"
    # A double submit of the same form records nothing more and shows the result.
    again = client.post(
        f"/ui/incidents/{incident_id}/judgements", data=form, follow_redirects=False
    )
    assert again.status_code == 303
    assert again.headers["location"] == reply.headers["location"]
    after = _levels(client, incident_id, reader)
    assert after["v1"] == "high"
    assert after["version"] == before["version"] + 1
    shown = client.get(reply.headers["location"])
    assert 'id="judgement-recorded"' in shown.text
    assert re.search(r'id="victim-level"><span class="level rank-3">High</span>', shown.text)
    assert "Disclosed further threats" in shown.text  # the judgements recorded
    written = _written(session, "POST /v1/incidents/{incident_id}/judgements")
    assert [(e.operation, e.purpose) for e in written] == [("alter", "triage")]


def test_a_childs_level_is_raised_on_the_child_ladder(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
) -> None:
    incident_id = _submit(client, submitter, _low_risk(incident))
    reader = make_key("triage")
    before = _levels(client, incident_id, reader)
    assert before["c1"] != "severe"
    token = sign_in("triage")
    page = client.get(f"/ui/incidents/{incident_id}")
    assert 'id="level-c1-severe"' in page.text
    reply = client.post(
        f"/ui/incidents/{incident_id}/judgements",
        data={
            "csrf_token": token,
            "subject_ref": "c1",
            "level": "severe",
            "rationale": "School reports the child is frightened to go home.",
        },
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    assert _levels(client, incident_id, reader)["c1"] == "severe"
    shown = client.get(reply.headers["location"])
    assert re.search(r'id="child-level-c1"><span class="level rank-4">Severe</span>', shown.text)


def test_a_judgement_without_reasons_is_refused_with_an_error_summary(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
) -> None:
    incident_id = _submit(client, submitter, _low_risk(incident))
    reader = make_key("triage")
    before = _levels(client, incident_id, reader)
    token = sign_in("triage")
    reply = client.post(
        f"/ui/incidents/{incident_id}/judgements",
        data={"csrf_token": token, "subject_ref": "v1", "level": "high", "rationale": "  "},
    )
    assert reply.status_code == 400
    assert 'class="error-summary"' in reply.text
    assert 'href="#rationale-v1"' in reply.text
    assert 'id="rationale-v1-error"' in reply.text
    assert 'id="level-v1-high" name="level" value="high" checked' in reply.text
    assert _levels(client, incident_id, reader)["version"] == before["version"]


def test_a_lower_or_equal_level_is_refused_by_the_screen(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
) -> None:
    incident_id = _submit(client, submitter, incident)  # the victim is high
    reader = make_key("triage")
    token = sign_in("triage")
    for level in ("medium", "high", "severe", "nonsense"):
        reply = client.post(
            f"/ui/incidents/{incident_id}/judgements",
            data={"csrf_token": token, "subject_ref": "v1", "level": level, "rationale": "x"},
        )
        assert reply.status_code == 400, level
        assert 'class="error-summary"' in reply.text
        assert "nonsense" not in reply.text
    unknown = client.post(
        f"/ui/incidents/{incident_id}/judgements",
        data={"csrf_token": token, "subject_ref": "zq-unknown", "level": "high", "rationale": "x"},
    )
    assert unknown.status_code == 400
    assert "zq-unknown" not in unknown.text  # (long enough not to occur in a random token)
    assert _levels(client, incident_id, reader)["version"] == 1


def test_forms_without_the_csrf_token_are_refused(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
) -> None:
    incident_id = _submit(client, submitter, _low_risk(incident))
    sign_in("triage")
    judged = client.post(
        f"/ui/incidents/{incident_id}/judgements",
        data={"subject_ref": "v1", "level": "high", "rationale": "reasons"},
    )
    assert judged.status_code == 403
    shared = client.post(
        f"/ui/incidents/{incident_id}/disclosures",
        data={"csrf_token": "forged", "decision": "not_shared", "recipient_agency": "csc"},
    )
    assert shared.status_code == 403
    reader = make_key("triage")
    assert _levels(client, incident_id, reader)["version"] == 1
    listed = client.get(f"/v1/incidents/{incident_id}/disclosures", headers=reader).json()
    assert listed["disclosures"] == []


def test_an_agency_posting_a_judgement_is_refused_by_the_api(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = _submit(client, submitter, _low_risk(incident))
    token = sign_in("agency", agency="csc")
    reply = client.post(
        f"/ui/incidents/{incident_id}/judgements",
        data={"csrf_token": token, "subject_ref": "v1", "level": "high", "rationale": "x"},
    )
    assert reply.status_code == 403


# --------------------------------------------------------------------------- sharing


def _sharing_form(token: str, **fields: str) -> dict[str, str]:
    form = {
        "csrf_token": token,
        "recipient_agency": "csc",
        "decision": "shared",
        "lawful_basis": "safeguarding",
        "category_risk_assessment": "yes",
        "category_child_details": "yes",
        "subject_c1": "yes",
        "consent_status": "not_sought_risk",
        "purpose": "Strategy discussion for the child.",
    }
    form.update(fields)
    return form


def test_a_sharing_decision_is_recorded_and_listed(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
    session: Session,
) -> None:
    incident_id = _submit(client, submitter, incident)
    token = sign_in("triage")
    page = client.get(f"/ui/incidents/{incident_id}")
    key = _KEY.findall(page.text)[-1]
    form = _sharing_form(token, idempotency_key=key)
    reply = client.post(
        f"/ui/incidents/{incident_id}/disclosures", data=form, follow_redirects=False
    )
    assert reply.status_code == 303, reply.text
    assert reply.headers["location"] == f"/ui/incidents/{incident_id}?recorded=sharing#disclosures"
    again = client.post(
        f"/ui/incidents/{incident_id}/disclosures", data=form, follow_redirects=False
    )
    assert again.status_code == 303
    listed = client.get(
        f"/v1/incidents/{incident_id}/disclosures", headers=make_key("triage")
    ).json()["disclosures"]
    assert len(listed) == 1  # the double submit replayed
    assert listed[0]["lawful_basis"] == "safeguarding"
    assert listed[0]["categories_shared"] == ["child_details", "risk_assessment"]
    assert listed[0]["subject_refs"] == ["c1"]
    shown = client.get(reply.headers["location"])
    assert 'id="sharing-recorded"' in shown.text
    table = shown.text.split('id="disclosure-list"', 1)[1].split("</table>", 1)[0]
    assert "Safeguarding" in table
    assert "Risk assessment" in table
    assert "Strategy discussion for the child." in table
    disclosed = _written(session, "POST /v1/incidents/{incident_id}/disclosures")
    # One disclosure; the replayed double submit is logged as a consult of what it returned.
    assert sorted((e.operation, e.purpose) for e in disclosed) == [
        ("consult", "triage"),
        ("disclose", "triage"),
    ]


def test_a_decision_not_to_share_needs_its_reason(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    make_key: KeyMaker,
) -> None:
    incident_id = _submit(client, submitter, incident)
    token = sign_in("triage")
    missing = client.post(
        f"/ui/incidents/{incident_id}/disclosures",
        data={
            "csrf_token": token,
            "recipient_agency": "housing",
            "decision": "not_shared",
            "consent_status": "refused",
            "purpose": "Rehousing request.",
        },
    )
    assert missing.status_code == 400
    assert 'href="#reason_not_shared"' in missing.text
    assert "Rehousing request." in missing.text  # the form keeps what was typed
    recorded = client.post(
        f"/ui/incidents/{incident_id}/disclosures",
        data={
            "csrf_token": token,
            "recipient_agency": "housing",
            "decision": "not_shared",
            "consent_status": "refused",
            "purpose": "Rehousing request.",
            "reason_not_shared": "The victim refused and the risk does not override it.",
        },
        follow_redirects=False,
    )
    assert recorded.status_code == 303, recorded.text
    listed = client.get(
        f"/v1/incidents/{incident_id}/disclosures", headers=make_key("triage")
    ).json()["disclosures"]
    assert [d["decision"] for d in listed] == ["not_shared"]


def test_sharing_errors_are_summarised_without_echoing_input(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
) -> None:
    incident_id = _submit(client, submitter, incident)
    token = sign_in("triage")
    # Missing basis and categories, caught by the screen.
    reply = client.post(
        f"/ui/incidents/{incident_id}/disclosures",
        data=_sharing_form(
            token, lawful_basis="", category_risk_assessment="", category_child_details=""
        ),
    )
    assert reply.status_code == 400
    assert 'href="#lawful_basis-consent"' in reply.text
    assert 'href="#category_incident_summary"' in reply.text
    # Consent as the basis without consent given.
    reply = client.post(
        f"/ui/incidents/{incident_id}/disclosures",
        data=_sharing_form(token, lawful_basis="consent"),
    )
    assert reply.status_code == 400
    # Refused by the API (a flag id that is not one): its message, linked to the field.
    reply = client.post(
        f"/ui/incidents/{incident_id}/disclosures",
        data=_sharing_form(token, flag_id="<b>not-a-flag</b>"),
    )
    assert reply.status_code == 400
    summary = reply.text.split('class="error-summary"', 1)[1].split("</div>", 1)[0]
    assert 'href="#flag_id"' in summary
    assert "not-a-flag" not in summary


def test_an_auditor_cannot_record_a_sharing_decision(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    incident_id = _submit(client, submitter, incident)
    token = sign_in("auditor", purpose="audit")
    reply = client.post(f"/ui/incidents/{incident_id}/disclosures", data=_sharing_form(token))
    assert reply.status_code == 403
