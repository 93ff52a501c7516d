"""The agency inbox: an agency's (or a school's) own flags, with the person each is about
as its minimised view of the incident gives them, and the actions to work them.

All data is invented (tests/data/README.md): the example incident's child ``c1`` attends
the invented school 100123.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditPendingEvent
from tests.conftest import KeyMaker
from tests.ui.conftest import SignIn, csrf_of
from tests.ui.forms import form_of

SCHOOL_A = "100123"  # the example child's school
SCHOOL_B = "20045678"
PURPOSE = "safeguarding_referral"


@pytest.fixture
def incident_id(client: TestClient, submitter: dict[str, str], incident: dict[str, Any]) -> str:
    created = client.post("/v1/incidents", json=incident, headers=submitter)
    assert created.status_code == 201, created.text
    return str(created.json()["incident_id"])


def api_flags(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    reply = client.get("/v1/flags", params={"limit": 200, **params}, headers=headers)
    assert reply.status_code == 200, reply.text
    items: list[dict[str, Any]] = reply.json()["items"]
    return items


def test_an_agency_sees_its_own_flags_with_the_person_and_is_audited(
    client: TestClient,
    incident_id: str,
    make_key: KeyMaker,
    sign_in: SignIn,
    session: Session,
) -> None:
    triage = make_key("triage")
    every = api_flags(client, triage, incident_id=incident_id)
    csc = [f for f in every if f["agency"] == "csc"]
    others = [f for f in every if f["agency"] != "csc"]
    assert csc
    assert others
    sign_in("agency", agency="csc", purpose=f"{PURPOSE}:REF-2026-7")
    page = client.get("/ui/inbox")
    assert page.status_code == 200, page.text
    html = page.text
    assert '<h1 id="inbox-title">Your flags</h1>' in html
    assert "Children&#39;s social care" in html
    for flag in csc:
        assert f'id="flag-{flag["id"]}"' in html
        assert f'id="flag-{flag["id"]}-acknowledged"' in html
    for flag in others:
        assert flag["id"] not in html
    assert f'href="/ui/incidents/{incident_id}"' in html
    assert "Leo Hale" in html  # the child, from csc's view of the incident
    assert "most urgent first" in html  # the order is said
    overdue = sum(1 for f in csc if f["overdue"])
    assert f'<strong id="count-overdue">{overdue}</strong>' in html
    assert f'<strong id="count-flags">{len(csc)}</strong>' in html
    # The API's order (priority, then due time).
    positions = [html.index(f'id="flag-{f["id"]}"') for f in csc]
    assert positions == sorted(positions)
    events = session.scalars(
        select(AuditPendingEvent).where(AuditPendingEvent.purpose == f"{PURPOSE}:REF-2026-7")
    ).all()
    routes = {(e.route, e.operation) for e in events}
    assert ("GET /v1/flags", "consult") in routes
    assert any(r == "GET /v1/incidents/{incident_id}" for r, _ in routes)


def test_acknowledge_and_complete_from_the_inbox(
    client: TestClient, incident_id: str, make_key: KeyMaker, sign_in: SignIn
) -> None:
    headers = make_key("agency", agency="csc")
    [flag, *_] = api_flags(client, headers)
    sign_in("agency", agency="csc", purpose=PURPOSE)
    fid = flag["id"]
    for status in ("acknowledged", "done"):
        page = client.get("/ui/inbox").text
        form = form_of(page, f"flag-{fid}-status-form")
        reply = client.post(
            form.action, data={**form.fields, "status": status}, follow_redirects=False
        )
        assert reply.status_code == 303, reply.text
        assert reply.headers["location"] == f"/ui/inbox#flag-actions-{fid}"
        now = client.get(f"/v1/flags/{fid}", headers=headers).json()
        assert now["status"] == status
    # Done: no longer among the open flags, but among the closed ones.
    assert f'id="flag-{fid}"' not in client.get("/ui/inbox").text
    closed = client.get("/ui/inbox?show=closed").text
    assert f'id="flag-{fid}"' in closed
    assert f'id="flag-{fid}-status-form"' not in closed


def test_the_overdue_filter_keeps_only_overdue_flags(
    client: TestClient, incident_id: str, make_key: KeyMaker, sign_in: SignIn
) -> None:
    headers = make_key("agency", agency="csc")
    flags = api_flags(client, headers)
    sign_in("agency", agency="csc", purpose=PURPOSE)
    page = client.get("/ui/inbox?overdue=true").text
    assert 'id="overdue" name="overdue" value="true" checked' in page
    for flag in flags:
        assert (f'id="flag-{flag["id"]}"' in page) == flag["overdue"]


def test_a_school_never_sees_another_schools_child(
    client: TestClient, incident_id: str, make_key: KeyMaker, sign_in: SignIn
) -> None:
    school_a = make_key("agency", agency="school", schools=[SCHOOL_A])
    pupil_flags = api_flags(client, school_a)
    assert pupil_flags, "the example raises a flag for the child's school"
    assert {f["subject_ref"] for f in pupil_flags} == {"c1"}
    pupil = pupil_flags[0]

    sign_in("agency", agency="school", schools=[SCHOOL_A], purpose=PURPOSE)
    own = client.get("/ui/inbox")
    assert own.status_code == 200
    assert f'id="flag-{pupil["id"]}"' in own.text
    assert "Leo Hale" in own.text
    assert "Amira" not in own.text  # the school's view holds the child, not the adults
    assert client.get(f"/ui/flags/{pupil['id']}").status_code == 200

    sign_in("agency", agency="school", schools=[SCHOOL_B], purpose=PURPOSE)
    other = client.get("/ui/inbox")
    assert other.status_code == 200
    assert pupil["id"] not in other.text
    assert "Leo Hale" not in other.text
    assert 'id="inbox-empty"' in other.text
    refused = client.get(f"/ui/flags/{pupil['id']}")
    assert refused.status_code == 404
    assert "Leo" not in refused.text
    assert pupil["reason"] not in refused.text
    token = csrf_of(client.get("/ui/purpose").text)
    reply = client.post(
        f"/ui/flags/{pupil['id']}/status",
        data={"csrf_token": token, "status": "done", "etag": pupil["etag"], "return_to": "/ui/"},
        follow_redirects=False,
    )
    assert reply.status_code == 404
    assert client.get(f"/v1/flags/{pupil['id']}", headers=school_a).json()["status"] == "open"


def test_roles_without_flags_have_no_inbox(client: TestClient, sign_in: SignIn) -> None:
    sign_in("submitter")
    page = client.get("/ui/inbox")
    assert page.status_code == 403
    assert 'id="inbox-title"' not in page.text
