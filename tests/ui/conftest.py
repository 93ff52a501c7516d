"""Signing in to the screens from a TestClient (the browser tests are in tests/browser)."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyMaker

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')

SignIn = Callable[..., str]


def csrf_of(html: str) -> str:
    found = _CSRF.search(html)
    assert found is not None, "the page has no form with a CSRF token"
    return found.group(1)


def sign_in_with(client: TestClient, secret: str, purpose: str | None = "triage") -> str:
    """Sign the client in with an API key (and choose a purpose); returns the CSRF token."""
    page = client.get("/ui/sign-in")
    reply = client.post(
        "/ui/sign-in",
        data={"csrf_token": csrf_of(page.text), "api_key": secret, "next": "/ui/"},
        follow_redirects=False,
    )
    assert reply.status_code == 303, reply.text
    form = client.get("/ui/purpose")
    token = csrf_of(form.text)
    if purpose is not None:
        code, _, case = purpose.partition(":")
        chosen = client.post(
            "/ui/purpose",
            data={"csrf_token": token, "purpose": code, "case_reference": case, "next": "/ui/"},
            follow_redirects=False,
        )
        assert chosen.status_code == 303, chosen.text
    return token


def secret_of(headers: dict[str, str]) -> str:
    return headers["Authorization"].removeprefix("Bearer ")


@pytest.fixture
def sign_in(client: TestClient, make_key: KeyMaker) -> SignIn:
    """``sign_in("triage", purpose="triage", **key_options)`` → the session's CSRF token."""

    def _sign_in(role: str, *, purpose: str | None = "triage", **kwargs: object) -> str:
        return sign_in_with(client, secret_of(make_key(role, **kwargs)), purpose)

    return _sign_in
