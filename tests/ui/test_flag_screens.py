"""The flag page and the flag actions: every change through PATCH /v1/flags/{id} with the
ETag the page was rendered with; a stale change shows what changed and overwrites nothing.

All data is invented (tests/data/README.md).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditPendingEvent
from tests.conftest import KeyMaker
from tests.ui.conftest import SignIn, csrf_of, secret_of, sign_in_with
from tests.ui.forms import form_of


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


@pytest.fixture
def flag(
    client: TestClient, submitter: dict[str, str], incident: dict[str, Any], triage: dict[str, str]
) -> dict[str, Any]:
    """An open flag of the example incident (children's social care, about child c1)."""
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    listed = client.get(
        "/v1/flags",
        params={"incident_id": created.json()["incident_id"], "agency": "csc", "limit": 200},
        headers=triage,
    )
    [found] = [
        f
        for f in listed.json()["items"]
        if f["subject_ref"] == "c1" and f["type"] == "children_social_care_referral"
    ]
    return dict(found)


@pytest.fixture
def second(app: FastAPI) -> Iterator[TestClient]:
    """A second browser, with its own session cookie."""
    with TestClient(app, raise_server_exceptions=False) as other:
        yield other


def now_of(client: TestClient, headers: dict[str, str], flag_id: str) -> dict[str, Any]:
    reply = client.get(f"/v1/flags/{flag_id}", headers=headers)
    assert reply.status_code == 200
    body: dict[str, Any] = reply.json()
    return body


def submit(
    client: TestClient, page: str, form_id: str, **values: str
) -> Any:  # the response, not followed
    form = form_of(page, form_id)
    return client.post(form.action, data={**form.fields, **values}, follow_redirects=False)


def test_flag_page_shows_the_flag_in_full_with_actions_and_is_audited(
    client: TestClient,
    sign_in: SignIn,
    flag: dict[str, Any],
    session: Session,
) -> None:
    sign_in("triage", purpose="triage:CASE-2026-11")
    page = client.get(f"/ui/flags/{flag['id']}")
    assert page.status_code == 200, page.text
    html = page.text
    assert '<h1 id="flag-title">Children social care referral</h1>' in html
    assert "Flag for Children&#39;s social care" in html
    assert "Leo Hale" in html  # the child the flag is about (invented)
    assert f'href="/ui/incidents/{flag["incident_id"]}"' in html
    assert 'id="flag-status"' in html
    assert "Open" in html
    assert f'id="flag-{flag["id"]}-acknowledged"' in html
    assert f'id="flag-{flag["id"]}-not-required"' in html
    assert f'id="flag-{flag["id"]}-assignee"' in html
    assert f'id="flag-{flag["id"]}-note"' in html
    assert "Raised" in html  # the history
    assert "<script>" not in html
    assert " style=" not in html
    assert " onclick" not in html
    # The etag the page was rendered with is in every change form.
    status_form = form_of(html, f"flag-{flag['id']}-status-form")
    assert status_form.fields["etag"] == flag["etag"]
    assert status_form.fields["idempotency_key"]
    events = session.scalars(
        select(AuditPendingEvent).where(AuditPendingEvent.purpose == "triage:CASE-2026-11")
    ).all()
    consulted = {e.route for e in events if e.operation == "consult" and flag["id"] in e.record_ids}
    assert consulted == {"GET /v1/flags/{flag_id}", "GET /v1/flags/{flag_id}/history"}


def test_acknowledge_in_progress_and_done_move_the_flag_on(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any], triage: dict[str, str]
) -> None:
    sign_in("triage")
    fid = flag["id"]
    for status in ("acknowledged", "in_progress", "done"):
        page = client.get(f"/ui/flags/{fid}").text
        reply = submit(client, page, f"flag-{fid}-status-form", status=status)
        assert reply.status_code == 303, reply.text
        assert reply.headers["location"] == f"/ui/flags/{fid}#flag-actions-{fid}"
        assert now_of(client, triage, fid)["status"] == status
    closed = client.get(f"/ui/flags/{fid}").text
    assert f'id="flag-{fid}-status-form"' not in closed  # done is final
    assert f'id="flag-{fid}-note-form"' in closed  # notes may still be added
    assert "In progress" in closed
    assert "Done" in closed


def test_not_required_needs_a_reason(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any], triage: dict[str, str]
) -> None:
    sign_in("triage")
    fid = flag["id"]
    page = client.get(f"/ui/flags/{fid}").text
    refused = submit(client, page, f"flag-{fid}-not-required-form", status_reason="   ")
    assert refused.status_code == 400
    assert "There is a problem" in refused.text
    assert f'href="#flag-{fid}-reason"' in refused.text
    assert now_of(client, triage, fid)["status"] == "open"
    too_long = submit(client, page, f"flag-{fid}-not-required-form", status_reason="x" * 1001)
    assert too_long.status_code == 400
    assert "x" * 1001 not in too_long.text.split("<textarea")[0]  # never in the error text
    done = submit(
        client, page, f"flag-{fid}-not-required-form", status_reason="Invented: already open."
    )
    assert done.status_code == 303, done.text
    now = now_of(client, triage, fid)
    assert (now["status"], now["status_reason"]) == ("not_required", "Invented: already open.")
    assert "Invented: already open." in client.get(f"/ui/flags/{fid}").text


def test_assign_and_remove_the_assignee(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any], triage: dict[str, str]
) -> None:
    sign_in("triage")
    fid = flag["id"]
    page = client.get(f"/ui/flags/{fid}").text
    empty = submit(client, page, f"flag-{fid}-assign-form", assignee=" ")
    assert empty.status_code == 400
    assert f'href="#flag-{fid}-assignee"' in empty.text
    reply = submit(client, page, f"flag-{fid}-assign-form", assignee="MASH team 2")
    assert reply.status_code == 303, reply.text
    assert now_of(client, triage, fid)["assignee"] == "MASH team 2"
    page = client.get(f"/ui/flags/{fid}").text
    assert 'id="flag-assignee">MASH team 2' in page
    reply = submit(client, page, f"flag-{fid}-assign-form", action="unassign")
    assert reply.status_code == 303, reply.text
    assert now_of(client, triage, fid)["assignee"] is None


def test_a_note_joins_the_history_once_even_when_submitted_twice(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any], triage: dict[str, str]
) -> None:
    sign_in("triage")
    fid = flag["id"]
    page = client.get(f"/ui/flags/{fid}").text
    empty = submit(client, page, f"flag-{fid}-note-form", text="")
    assert empty.status_code == 400
    for _ in range(2):  # a double click: the same rendered form twice
        reply = submit(client, page, f"flag-{fid}-note-form", text="Invented: rang the school.")
        assert reply.status_code == 303, reply.text
    history = client.get(f"/v1/flags/{fid}/history", headers=triage).json()["events"]
    assert [e["note"] for e in history if e["change"] == "note"] == ["Invented: rang the school."]
    assert "Invented: rang the school." in client.get(f"/ui/flags/{fid}").text
    # The same rendered form sent again with other text (brought back from the browser's
    # history): refused, with a way forward, and the first note stands alone.
    other = submit(client, page, f"flag-{fid}-note-form", text="Invented: second thoughts.")
    assert other.status_code == 400
    assert "already sent with other values" in other.text
    history = client.get(f"/v1/flags/{fid}/history", headers=triage).json()["events"]
    assert [e["note"] for e in history if e["change"] == "note"] == ["Invented: rang the school."]


def test_a_stale_change_shows_what_changed_and_overwrites_nothing(
    client: TestClient,
    second: TestClient,
    make_key: KeyMaker,
    flag: dict[str, Any],
    triage: dict[str, str],
) -> None:
    fid = flag["id"]
    sign_in_with(client, secret_of(make_key("triage")))
    sign_in_with(second, secret_of(make_key("triage")))
    mine = client.get(f"/ui/flags/{fid}").text
    theirs = second.get(f"/ui/flags/{fid}").text
    # The other worker assigns the flag and starts it; then I, from my stale page, close it.
    assert submit(second, theirs, f"flag-{fid}-assign-form", assignee="Worker B").status_code == 303
    theirs = second.get(f"/ui/flags/{fid}").text
    assert (
        submit(second, theirs, f"flag-{fid}-status-form", status="in_progress").status_code == 303
    )
    stale = submit(client, mine, f"flag-{fid}-status-form", status="done")
    assert stale.status_code == 409, stale.text
    html = stale.text
    assert "Someone else changed this flag" in html
    assert 'id="conflict-status"' in html
    status_row = html.split('id="conflict-status"')[1].split("</tr>")[0]
    assert "Open" in status_row
    assert "In progress" in status_row
    assert "Changed" in status_row
    assignee_row = html.split('id="conflict-assignee"')[1].split("</tr>")[0]
    assert "Worker B" in assignee_row
    assert "Changed" in assignee_row
    assert "What happened since you looked" in html
    # Nothing was overwritten.
    now = now_of(client, triage, fid)
    assert (now["status"], now["assignee"]) == ("in_progress", "Worker B")
    # Re-applied on the current version, it goes through.
    again = submit(client, html, "reapply-form")
    assert again.status_code == 303, again.text
    assert now_of(client, triage, fid)["status"] == "done"


def test_a_stale_change_that_can_no_longer_be_made_is_not_offered(
    client: TestClient, second: TestClient, make_key: KeyMaker, flag: dict[str, Any]
) -> None:
    fid = flag["id"]
    sign_in_with(client, secret_of(make_key("triage")))
    sign_in_with(second, secret_of(make_key("triage")))
    mine = client.get(f"/ui/flags/{fid}").text
    theirs = second.get(f"/ui/flags/{fid}").text
    assert submit(second, theirs, f"flag-{fid}-status-form", status="done").status_code == 303
    stale = submit(client, mine, f"flag-{fid}-status-form", status="acknowledged")
    assert stale.status_code == 409
    assert 'id="reapply-impossible"' in stale.text
    assert 'id="reapply-form"' not in stale.text


def test_forms_without_the_sessions_csrf_token_or_from_another_origin_are_refused(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any], triage: dict[str, str]
) -> None:
    sign_in("triage")
    fid = flag["id"]
    form = form_of(client.get(f"/ui/flags/{fid}").text, f"flag-{fid}-status-form")
    missing = {k: v for k, v in form.fields.items() if k != "csrf_token"}
    for data, headers in (
        ({**missing, "status": "done"}, {}),
        ({**missing, "status": "done", "csrf_token": "forged"}, {}),
        ({**form.fields, "status": "done"}, {"Origin": "https://elsewhere.example"}),
        ({**form.fields, "status": "done"}, {"Origin": "null"}),
        ({**form.fields, "status": "done"}, {"Origin": "null", "Sec-Fetch-Site": "cross-site"}),
    ):
        reply = client.post(form.action, data=data, headers=headers, follow_redirects=False)
        assert reply.status_code == 403
    assert now_of(client, triage, fid)["status"] == "open"


def test_a_browser_posting_to_its_own_origin_under_no_referrer_is_accepted(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any], triage: dict[str, str]
) -> None:
    # Referrer-Policy: no-referrer makes a browser send "Origin: null" on its own POSTs;
    # its Sec-Fetch-Site says the form came from this origin.
    sign_in("triage")
    fid = flag["id"]
    form = form_of(client.get(f"/ui/flags/{fid}").text, f"flag-{fid}-status-form")
    headers = {"Origin": "null", "Sec-Fetch-Site": "same-origin"}
    data = {**form.fields, "status": "acknowledged"}
    reply = client.post(form.action, data=data, headers=headers, follow_redirects=False)
    assert reply.status_code == 303
    assert now_of(client, triage, fid)["status"] == "acknowledged"


def test_return_to_never_leaves_the_screens(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any]
) -> None:
    sign_in("triage")
    fid = flag["id"]
    page = client.get(f"/ui/flags/{fid}").text
    reply = submit(
        client,
        page,
        f"flag-{fid}-status-form",
        status="acknowledged",
        return_to="https://elsewhere.example/ui/",
    )
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/ui/")
    page = client.get(f"/ui/flags/{fid}").text
    reply = submit(client, page, f"flag-{fid}-status-form", status="done", return_to="/ui/inbox")
    assert reply.headers["location"] == f"/ui/inbox#flag-actions-{fid}"


def test_a_flag_outside_scope_is_a_404_page_and_an_auditor_has_no_actions(
    client: TestClient, sign_in: SignIn, flag: dict[str, Any], triage: dict[str, str]
) -> None:
    fid = flag["id"]
    sign_in("triage", areas=["E09000099"])
    page = client.get(f"/ui/flags/{fid}")
    assert page.status_code == 404
    assert flag["reason"] not in page.text
    assert client.get("/ui/flags/not-a-uuid").status_code == 404
    reply = client.post(
        f"/ui/flags/{fid}/status",
        data={
            "csrf_token": csrf_of(client.get("/ui/purpose").text),
            "status": "done",
            "etag": flag["etag"],
            "return_to": "/ui/",
        },
        follow_redirects=False,
    )
    assert reply.status_code == 404
    assert now_of(client, triage, fid)["status"] == "open"
    sign_in("auditor", purpose="audit")
    page = client.get(f"/ui/flags/{fid}")
    assert page.status_code == 200
    assert f'id="flag-actions-{fid}"' not in page.text
    assert f'id="flag-{fid}-status-form"' not in page.text
