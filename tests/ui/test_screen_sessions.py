"""Signing in to the screens: server-side sessions, cookies, CSRF, purpose, CSP."""

from __future__ import annotations

import uuid
from datetime import timedelta

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.auth.keys import revoke_key
from app.auth.models import ScreenSession
from app.auth.sessions import any_ended, purge_expired
from app.db import utcnow
from tests.conftest import KeyMaker
from tests.ui.conftest import SignIn, csrf_of, secret_of, sign_in_with


def test_pages_need_a_session(client: TestClient) -> None:
    reply = client.get("/ui/queue?area=E09000018", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"] == "/ui/sign-in?next=/ui/queue%3Farea%3DE09000018"


def test_sign_in_keeps_the_key_on_the_server(
    client: TestClient, make_key: KeyMaker, session: Session
) -> None:
    secret = secret_of(make_key("triage"))
    page = client.get("/ui/sign-in")
    reply = client.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_of(page.text), "api_key": secret, "next": "/ui/queue"},
        follow_redirects=False,
    )
    assert reply.status_code == 303
    assert reply.headers["location"] == "/ui/queue"
    cookie = next(c for c in reply.headers.get_list("set-cookie") if "triage_session=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie
    # Development and test: not Secure, so that http://127.0.0.1 works.
    assert "Secure" not in cookie
    assert secret not in cookie
    token = cookie.split(";")[0].split("=", 1)[1]
    stored = session.scalars(select(ScreenSession)).one()
    assert token not in (stored.token_hash, stored.csrf_token)
    assert stored.role == "triage"
    assert stored.areas == ["E09000018"]


def test_secure_cookie_outside_development(client: TestClient, make_key: KeyMaker) -> None:
    client.app.state.settings = client.app.state.settings.model_copy(  # type: ignore[attr-defined]
        update={"ui_secure_cookie": True}
    )
    client.base_url = "https://testserver"  # type: ignore[assignment]  # Secure: HTTPS only
    page = client.get("/ui/sign-in")
    reply = client.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_of(page.text), "api_key": secret_of(make_key("triage"))},
        follow_redirects=False,
    )
    cookie = next(c for c in reply.headers.get_list("set-cookie") if "triage_session=" in c)
    assert "Secure" in cookie


def test_a_wrong_key_is_refused_without_echo(client: TestClient, session: Session) -> None:
    page = client.get("/ui/sign-in")
    wrong = "tri_" + uuid.uuid4().hex
    reply = client.post("/ui/sign-in", data={"csrf_token": csrf_of(page.text), "api_key": wrong})
    assert reply.status_code == 401
    assert wrong not in reply.text
    assert "not valid" in reply.text
    assert session.scalar(select(func.count()).select_from(ScreenSession)) == 0


def test_sign_in_form_needs_its_token(client: TestClient, make_key: KeyMaker) -> None:
    client.get("/ui/sign-in")
    reply = client.post(
        "/ui/sign-in",
        data={"csrf_token": "forged", "api_key": secret_of(make_key("triage"))},
        follow_redirects=False,
    )
    assert reply.status_code == 403


def test_next_never_leaves_the_screens(client: TestClient, make_key: KeyMaker) -> None:
    page = client.get("/ui/sign-in?next=https://elsewhere.example/")
    assert 'value="/ui/"' in page.text
    for target in ("//elsewhere.example/ui/", "https://elsewhere.example/ui/x", "/v1/queue"):
        page = client.get("/ui/sign-in")
        reply = client.post(
            "/ui/sign-in",
            data={
                "csrf_token": csrf_of(page.text),
                "api_key": secret_of(make_key("triage")),
                "next": target,
            },
            follow_redirects=False,
        )
        assert reply.headers["location"] == "/ui/", target


def test_a_purpose_is_chosen_before_personal_data(client: TestClient, sign_in: SignIn) -> None:
    sign_in("triage", purpose=None)
    reply = client.get("/ui/queue", follow_redirects=False)
    assert reply.status_code == 303
    assert reply.headers["location"].startswith("/ui/purpose?next=")


def test_purpose_must_be_a_code(client: TestClient, sign_in: SignIn) -> None:
    csrf = sign_in("triage", purpose=None)
    reply = client.post(
        "/ui/purpose",
        data={"csrf_token": csrf, "purpose": "triage", "case_reference": "Jane Smith"},
    )
    assert reply.status_code == 400
    assert "Jane Smith" not in reply.text
    ok = client.post(
        "/ui/purpose",
        data={"csrf_token": csrf, "purpose": "marac", "case_reference": "MARAC-2026-0147"},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    assert "marac:MARAC-2026-0147" in client.get("/ui/purpose").text


def test_forms_need_the_session_csrf_token(client: TestClient, sign_in: SignIn) -> None:
    csrf = sign_in("triage")
    forged = client.post(
        "/ui/purpose", data={"csrf_token": "x" * 43, "purpose": "audit"}, follow_redirects=False
    )
    assert forged.status_code == 403
    cross_site = client.post(
        "/ui/purpose",
        data={"csrf_token": csrf, "purpose": "audit"},
        headers={"Origin": "https://elsewhere.example"},
        follow_redirects=False,
    )
    assert cross_site.status_code == 403
    same_site = client.post(
        "/ui/purpose",
        data={"csrf_token": csrf, "purpose": "audit"},
        headers={"Origin": "http://testserver"},
        follow_redirects=False,
    )
    assert same_site.status_code == 303


def test_sign_out_ends_the_session(client: TestClient, sign_in: SignIn, session: Session) -> None:
    csrf = sign_in("triage")
    assert client.post("/ui/sign-out", data={"csrf_token": csrf}, follow_redirects=False)
    assert session.scalar(select(func.count()).select_from(ScreenSession)) == 0
    assert client.get("/ui/purpose", follow_redirects=False).status_code == 303


def test_revoking_the_key_ends_its_sessions(
    client: TestClient, make_key: KeyMaker, session: Session
) -> None:
    headers = make_key("auditor")
    sign_in_with(client, secret_of(headers), purpose="audit")
    assert client.get("/ui/purpose").status_code == 200
    key_id = session.scalars(select(ScreenSession.key_id)).one()
    assert key_id is not None
    revoke_key(session, key_id)
    session.commit()
    assert client.get("/ui/purpose", follow_redirects=False).status_code == 303


def test_screens_have_a_strict_content_security_policy(client: TestClient) -> None:
    csp = client.get("/ui/sign-in").headers["content-security-policy"]
    assert "script-src 'self';" in csp
    assert "unsafe-inline" not in csp
    assert "unsafe-eval" not in csp
    assert "frame-ancestors 'none'" in csp
    assert "form-action 'self'" in csp


def test_static_assets_are_served_from_the_package(client: TestClient) -> None:
    assert client.get("/ui/static/htmx.min.js").status_code == 200
    assert client.get("/ui/static/triage.css").status_code == 200


def test_idle_and_expired_sessions_end(
    client: TestClient, sign_in: SignIn, session: Session
) -> None:
    sign_in("triage")
    idle = timedelta(minutes=30)
    later = utcnow() + timedelta(minutes=31)
    assert not any_ended(session, idle=idle)
    assert any_ended(session, idle=idle, now=later)
    assert purge_expired(session, idle=idle, now=later) == 1
    session.commit()
    assert client.get("/ui/purpose", follow_redirects=False).status_code == 303
