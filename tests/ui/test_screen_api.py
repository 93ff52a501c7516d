"""The screens' in-process calls: the principal travels only in the ASGI scope."""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.ui.conftest import SignIn


def test_a_client_cannot_claim_a_screen_principal(client: TestClient) -> None:
    # Header names are not scope keys: the API still wants a credential.
    reply = client.get(
        "/v1/queue", headers={"triage.screen_principal": "admin", "X-Purpose": "triage"}
    )
    assert reply.status_code == 401


def test_a_screen_session_is_no_api_credential(client: TestClient, sign_in: SignIn) -> None:
    sign_in("triage")
    # The session cookie is scoped to /ui and the API reads only bearer credentials.
    reply = client.get("/v1/queue", headers={"X-Purpose": "triage"})
    assert reply.status_code == 401
