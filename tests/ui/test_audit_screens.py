"""The auditor's screens: an assessment explained, reproduced, the audit log and its chain.

All data is invented (tests/data/incident.example.json).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from markupsafe import escape
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from app.assessments.models import Assessment
from app.audit.models import AuditEvent, AuditPendingEvent
from app.config import Settings
from app.db import Database
from tests.conftest import build_app, example_incident
from tests.ui.conftest import SignIn, csrf_of, secret_of, sign_in_with

AUDIT = "audit:AUD-2026-0042"


def submit(client: TestClient, submitter: dict[str, str], incident: dict[str, Any]) -> Any:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    return created.json()


def pending(session: Session, route: str) -> list[AuditPendingEvent]:
    return list(
        session.scalars(
            select(AuditPendingEvent)
            .where(AuditPendingEvent.route == route)
            .order_by(AuditPendingEvent.id)
        )
    )


# --------------------------------------------------------------------------- explanation


def test_the_explanation_shows_every_item_rule_and_definition_and_is_audited(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    body = submit(client, submitter, incident)
    assessment = body["assessment"]
    sign_in("auditor", purpose=AUDIT)
    page = client.get(f"/ui/assessments/{assessment['id']}")
    assert page.status_code == 200, page.text
    html = page.text
    assert html.count("<h1>") == 1
    # Every checklist item with its answer, effective answer and source (rules v2).
    items = assessment["victim"]["items"]
    assert html.count('<tr id="item-') == len(items) == 24
    for item in items:
        assert f'id="item-{item["id"]}"' in html
        assert str(escape(item["label"])) in html
    assert "Effective answer" in html
    assert "<code>circumstances.strangulation</code> = Yes" in html
    assert "15 of 24" in html
    # Every rule evaluated, and those that fired tagged in words.
    for rule in assessment["victim"]["triggers"]:
        assert f"<code>{rule['rule']}</code>" in html
    assert html.count('<span class="tag">Fired</span>') == sum(
        t["fired"]
        for t in [*assessment["victim"]["triggers"]]
        + [t for c in assessment["children"] for t in c["triggers"]]
    )
    # The definitions with their ids, versions and hashes; the thresholds.
    for ref in (
        assessment["definitions"]["victim_checklist"],
        assessment["definitions"]["child_risk"],
        assessment["flag_rules"],
    ):
        assert ref["sha256"] in html
        assert f"<code>{ref['id']}</code>" in html
    assert 'id="victim-thresholds"' in html
    assert "<strong>High from</strong>: 14" in html
    # Each child, the perpetrator, the classifier (none here), judgements, submissions.
    assert 'id="child-c1"' in html
    assert 'id="child-c2"' in html
    assert "Child c1: Leo Hale, aged 7" in html
    assert 'id="perpetrator-markers"' in html
    assert 'id="no-classifier"' in html
    assert 'id="no-judgements"' in html
    assert "officer-4471" in html
    assert f'href="/ui/incidents/{body["incident_id"]}"' in html
    assert 'id="reproduce-button"' in html
    # One consult of the explanation, with the purpose chosen on screen.
    events = pending(session, "GET /v1/assessments/{assessment_id}/explanation")
    assert [(e.operation, e.purpose, e.role) for e in events] == [("consult", AUDIT, "auditor")]
    assert assessment["id"] in events[0].record_ids


def test_professional_judgements_are_shown_for_the_victim_and_each_child(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    make_key: Any,
    sign_in: SignIn,
) -> None:
    incident["persons"][2]["child"]["present"] = False  # c1 below severe, so it can be raised
    body = submit(client, submitter, incident)
    triage = make_key("triage")
    judged = client.post(
        f"/v1/incidents/{body['incident_id']}/judgements",
        json={"level": "severe", "subject_ref": "c1", "rationale": "Seen at strategy meeting."},
        headers=triage,
    )
    assert judged.status_code in (200, 201), judged.text
    latest = client.get(f"/v1/incidents/{body['incident_id']}/assessments", headers=triage).json()[
        "assessments"
    ][0]
    sign_in("auditor", purpose=AUDIT)
    html = client.get(f"/ui/assessments/{latest['id']}").text
    assert 'id="judgements-table"' in html
    assert "Seen at strategy meeting." in html
    child = html.split('id="child-c1"')[1].split("</section>")[0]
    assert "Seen at strategy meeting." in child
    assert "Judgement" in html


def test_triage_may_read_the_explanation_too(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    body = submit(client, submitter, incident)
    sign_in("triage")
    page = client.get(f"/ui/assessments/{body['assessment']['id']}")
    assert page.status_code == 200
    assert 'id="definitions-table"' in page.text


def test_an_assessment_out_of_scope_is_a_404_page(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    body = submit(client, submitter, incident)
    assessment_id, incident_id = body["assessment"]["id"], body["incident_id"]
    sign_in("triage", areas=["E09000099"])
    for path in (
        f"/ui/assessments/{assessment_id}",
        f"/ui/incidents/{incident_id}/assessments",
        f"/ui/assessments/{uuid.uuid4()}",
        "/ui/assessments/not-an-id",
        "/ui/incidents/not-an-id/assessments",
    ):
        page = client.get(path)
        assert page.status_code == 404, path
        assert "Leo" not in page.text
        assert "15 of 24" not in page.text
    token = csrf_of(client.get("/ui/purpose").text)
    refused = client.post(f"/ui/assessments/{assessment_id}/reproduce", data={"csrf_token": token})
    assert refused.status_code == 404


def test_an_agency_may_not_read_assessments(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], sign_in: SignIn
) -> None:
    body = submit(client, submitter, incident)
    sign_in("agency", agency="csc")
    assert client.get(f"/ui/assessments/{body['assessment']['id']}").status_code == 403
    assert client.get(f"/ui/incidents/{body['incident_id']}/assessments").status_code == 403


def test_the_incident_lists_its_assessment_versions_with_links(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    body = submit(client, submitter, incident)
    sign_in("auditor", purpose=AUDIT)
    page = client.get(f"/ui/incidents/{body['incident_id']}/assessments")
    assert page.status_code == 200
    assert f'href="/ui/assessments/{body["assessment"]["id"]}"' in page.text
    assert 'id="assessment-1"' in page.text
    assert f'href="/ui/audit?record={body["incident_id"]}"' in page.text
    events = pending(session, "GET /v1/incidents/{incident_id}/assessments")
    assert [e.purpose for e in events] == [AUDIT]
    # The incident page links here and to the latest explanation.
    incident_page = client.get(f"/ui/incidents/{body['incident_id']}").text
    assert f'href="/ui/incidents/{body["incident_id"]}/assessments"' in incident_page
    assert f'href="/ui/assessments/{body["assessment"]["id"]}"' in incident_page


# --------------------------------------------------------------------------- reproduce


def test_reproducing_shows_identical(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    body = submit(client, submitter, incident)
    assessment_id = body["assessment"]["id"]
    token = sign_in("auditor", purpose=AUDIT)
    page = client.post(f"/ui/assessments/{assessment_id}/reproduce", data={"csrf_token": token})
    assert page.status_code == 200
    assert 'id="reproduction-result" data-identical="true"' in page.text
    assert "<h3>Identical</h3>" in page.text
    assert 'id="victim-items"' in page.text  # the whole page, with JavaScript off
    # With htmx: only the result.
    partial = client.post(
        f"/ui/assessments/{assessment_id}/reproduce?partial=true", data={"csrf_token": token}
    )
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert 'data-identical="true"' in partial.text
    events = pending(session, "POST /v1/assessments/{assessment_id}/reproduce")
    assert [(e.purpose, e.detail) for e in events] == [
        (AUDIT, {"reproduce": 1, "identical": 1}),
        (AUDIT, {"reproduce": 1, "identical": 1}),
    ]


def test_reproducing_a_changed_assessment_shows_the_differences(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    body = submit(client, submitter, incident)
    assessment_id = body["assessment"]["id"]
    stored = session.get(Assessment, uuid.UUID(assessment_id))
    assert stored is not None
    assert stored.result is not None
    changed = json.loads(json.dumps(stored.result))
    changed["victim"]["score"] = 3  # edited behind the service's back
    stored.result = changed
    session.commit()
    token = sign_in("auditor", purpose=AUDIT)
    page = client.post(f"/ui/assessments/{assessment_id}/reproduce", data={"csrf_token": token})
    assert page.status_code == 200
    assert 'data-identical="false"' in page.text
    assert "1 difference<" in page.text
    row = page.text.split('id="reproduction-differences"')[1]
    assert "<code>/victim/score</code>" in row
    assert "<code>3</code>" in row
    assert "<code>15</code>" in row


def test_reproducing_without_the_form_token_is_refused(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    body = submit(client, submitter, incident)
    sign_in("auditor", purpose=AUDIT)
    path = f"/ui/assessments/{body['assessment']['id']}/reproduce"
    assert client.post(path, data={}).status_code == 403
    assert client.post(path, data={"csrf_token": "forged"}).status_code == 403
    token = csrf_of(client.get("/ui/audit").text)
    other_site = client.post(
        path, data={"csrf_token": token}, headers={"Origin": "https://elsewhere.example"}
    )
    assert other_site.status_code == 403
    assert pending(session, "POST /v1/assessments/{assessment_id}/reproduce") == []


# --------------------------------------------------------------------------- audit log


def test_the_audit_log_lists_and_filters_events_and_logs_its_reading(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    session: Session,
) -> None:
    first = submit(client, submitter, incident)
    second_incident = example_incident()
    second_incident["source"]["reference"] = "PPN-2026-009999"
    second = submit(client, submitter, second_incident)
    sign_in("auditor", purpose=AUDIT)
    client.get(f"/ui/assessments/{first['assessment']['id']}")

    page = client.get("/ui/audit")
    assert page.status_code == 200
    assert page.text.count('<tr id="event-') >= 3
    assert first["incident_id"] in page.text
    assert second["incident_id"] in page.text

    only_first = client.get("/ui/audit", params={"record": first["incident_id"]})
    assert only_first.status_code == 200
    assert first["incident_id"] in only_first.text
    assert second["incident_id"] not in only_first.text
    assert f'value="{first["incident_id"]}"' in only_first.text  # the form keeps the filter

    collects = client.get("/ui/audit", params={"operation": "collect"})
    rows = collects.text.split("<tbody>")[1].split("</tbody>")[0]
    assert rows.count("<tr ") == 2
    assert "Consult" not in rows

    future = client.get("/ui/audit", params={"from": "2199-01-01T00:00"})
    assert 'id="no-audit-events"' in future.text
    past = client.get("/ui/audit", params={"from": "2000-01-01T00:00", "to": "2199-01-01T00:00"})
    assert past.text.count('<tr id="event-') >= 3

    by_actor = client.get("/ui/audit", params={"actor": "key:nobody"})
    assert 'id="no-audit-events"' in by_actor.text

    # Reading the log is itself logged, with the filter used and the purpose.
    reads = list(
        session.scalars(select(AuditEvent).where(AuditEvent.route == "GET /v1/audit/events"))
    ) + pending(session, "GET /v1/audit/events")
    assert {e.purpose for e in reads} == {AUDIT}
    filters = [json.loads(e.detail["filter"]) for e in reads]
    assert {"record": first["incident_id"]} in filters
    assert {"operation": "collect"} in filters
    assert any(f.get("from", "").startswith("2199-01-01T00:00:00") for f in filters)


def test_the_audit_log_pages_with_its_filters(
    client: TestClient,
    submitter: dict[str, str],
    incident: dict[str, Any],
    sign_in: SignIn,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("app.ui.audit.PAGE_SIZE", 1)
    for n in range(3):
        incident["source"]["reference"] = f"PPN-2026-00{n}100"
        submit(client, submitter, incident)
    sign_in("auditor", purpose=AUDIT)
    page = client.get("/ui/audit", params={"operation": "collect"})
    assert page.text.count('<tr id="event-') == 1
    assert 'id="event-1"' in page.text
    assert 'href="/ui/audit?operation=collect&amp;after=1"' in page.text
    second = client.get("/ui/audit?operation=collect&after=1")
    assert 'id="event-2"' in second.text
    assert 'id="audit-first-page"' in second.text


def test_audit_filters_that_are_not_valid_show_an_error_summary(
    client: TestClient, sign_in: SignIn, session: Session
) -> None:
    sign_in("auditor", purpose=AUDIT)
    page = client.get("/ui/audit", params={"from": "yesterday-ish", "operation": "peek"})
    assert page.status_code == 400
    assert 'class="error-summary"' in page.text
    assert 'href="#from"' in page.text
    assert 'href="#operation"' in page.text
    assert "yesterday-ish" not in page.text.split('id="error-summary"')[1].split("</div>")[0]
    assert pending(session, "GET /v1/audit/events") == []


def test_only_an_auditor_reads_the_audit_log(client: TestClient, sign_in: SignIn) -> None:
    sign_in("triage")
    assert client.get("/ui/audit").status_code == 403
    assert client.get("/ui/audit/verify").status_code == 403


def test_the_audit_log_needs_a_purpose(client: TestClient, sign_in: SignIn) -> None:
    sign_in("auditor", purpose=None)
    reply = client.get("/ui/audit?operation=collect", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/ui/purpose?next=")


# --------------------------------------------------------------------------- the chain


@pytest.fixture
def committed(fresh_database: Database, make_key_fresh: Any) -> Iterator[dict[str, Any]]:
    """An app on a database of its own (verification reads committed events only)."""
    settings = Settings(environment="test", database_url=fresh_database.url)
    app = build_app(settings, fresh_database, None)
    submitter = make_key_fresh(fresh_database, "submitter")
    auditor = make_key_fresh(fresh_database, "auditor")
    with TestClient(app, raise_server_exceptions=False) as c:
        submit(c, submitter, example_incident())
        sign_in_with(c, secret_of(auditor), AUDIT)
        yield {"client": c, "db": fresh_database}


def test_verifying_the_chain_names_the_head_or_the_first_broken_link(
    committed: dict[str, Any],
) -> None:
    c, db = committed["client"], committed["db"]
    audit_page = c.get("/ui/audit")
    assert 'id="verify-chain"' in audit_page.text
    intact = c.get("/ui/audit/verify")
    assert intact.status_code == 200
    assert 'id="verify-result" data-ok="true"' in intact.text
    assert "Verified up to seq" in intact.text
    head = int(intact.text.split('id="verified-seq">')[1].split("<")[0])
    assert head >= 2  # the intake and the listing of the log

    with db.engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET purpose = 'nothing to see' WHERE seq = 1"))
    broken = c.get("/ui/audit/verify")
    assert broken.status_code == 200
    assert 'data-ok="false"' in broken.text
    assert 'id="broken-seq">1<' in broken.text
    assert "altered" in broken.text


def test_verifying_against_an_anchor(committed: dict[str, Any]) -> None:
    c = committed["client"]
    first = c.get("/ui/audit/verify").text
    seq = first.split('id="verified-seq">')[1].split("<")[0]
    digest = first.split('<dt>Head hash</dt><dd><code class="hash">')[1].split("<")[0]
    again = c.get("/ui/audit/verify", params={"anchor": f"{seq}:{digest}"})
    assert 'data-ok="true"' in again.text
    assert "the anchor given is still there unchanged" in again.text
    wrong = c.get("/ui/audit/verify", params={"anchor": f"{seq}:{'0' * 64}"})
    assert 'data-ok="false"' in wrong.text
    malformed = c.get("/ui/audit/verify", params={"anchor": "not an anchor"})
    assert malformed.status_code == 400
    assert 'href="#anchor"' in malformed.text
