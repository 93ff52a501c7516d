"""Signing in to the screens through an OpenID Connect provider (authorization code + PKCE).

The provider is a fake one answering through an httpx transport given to the app's OIDC
client: discovery, JWKS, and a token endpoint that checks the PKCE code verifier against
the challenge the authorization request carried. Its ID tokens are signed with an RSA key
made for the test run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlencode, urlsplit

import httpx
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from joserfc import jwt
from joserfc.jwk import RSAKey
from pydantic import ValidationError
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from app.auth.models import OidcPendingSignIn, ScreenSession
from app.auth.oidc import OidcClient
from app.auth.oidc_store import save_pending, take_pending
from app.config import Settings
from app.db import Database, utcnow
from tests.conftest import build_app
from tests.ui.conftest import csrf_of

ISSUER = "https://id.force.example"
CLIENT_ID = "triage-screens"
REDIRECT = "http://testserver/ui/sign-in/oidc/callback"


@pytest.fixture(scope="module")
def signing_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})


@pytest.fixture(scope="module")
def other_key() -> RSAKey:
    return RSAKey.generate_key(2048, parameters={"kid": "key-1", "use": "sig", "alg": "RS256"})


def _s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Grant:
    challenge: str
    nonce: str
    redirect_uri: str


@dataclass
class FakeProvider:
    """Discovery, JWKS and a token endpoint; ``authorize`` plays the person signing in."""

    key: RSAKey
    claims: dict[str, Any] = field(
        default_factory=lambda: {"triage_role": "triage", "triage_areas": ["E09000018"]}
    )
    overrides: dict[str, Any] = field(default_factory=dict)  # registered claims to change
    sign_with: RSAKey | None = None  # a key other than the published one
    down: bool = False
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[httpx.Request] = field(default_factory=list)
    jwks_fetches: int = 0

    def metadata(self) -> dict[str, Any]:
        return {
            "issuer": ISSUER,
            "authorization_endpoint": f"{ISSUER}/authorize",
            "token_endpoint": f"{ISSUER}/token",
            "jwks_uri": f"{ISSUER}/jwks",
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("provider unreachable", request=request)
        path = request.url.path
        if request.method == "GET" and path == "/.well-known/openid-configuration":
            return httpx.Response(200, json=self.metadata())
        if request.method == "GET" and path == "/jwks":
            self.jwks_fetches += 1
            return httpx.Response(200, json={"keys": [self.key.as_dict(private=False)]})
        if request.method == "POST" and path == "/token":
            return self._token(request)
        return httpx.Response(404)

    def authorize(self, location: str) -> tuple[str, dict[str, str]]:
        """The provider's side of the redirect: checks it, returns the callback URL."""
        url = urlsplit(location)
        assert f"{url.scheme}://{url.netloc}{url.path}" == f"{ISSUER}/authorize"
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        assert query["response_type"] == "code"
        assert query["client_id"] == CLIENT_ID
        assert query["redirect_uri"] == REDIRECT
        assert "openid" in query["scope"].split()
        assert query["code_challenge_method"] == "S256"
        code = uuid.uuid4().hex
        self.grants[code] = Grant(query["code_challenge"], query["nonce"], query["redirect_uri"])
        callback = "/ui/sign-in/oidc/callback?" + urlencode({"code": code, "state": query["state"]})
        return callback, query

    def _token(self, request: httpx.Request) -> httpx.Response:
        self.token_requests.append(request)
        form = {k: v[0] for k, v in parse_qs(request.content.decode()).items()}
        grant = self.grants.pop(form.get("code", ""), None)
        if (
            grant is None
            or form.get("grant_type") != "authorization_code"
            or form.get("redirect_uri") != grant.redirect_uri
            or _s256(form.get("code_verifier", "")) != grant.challenge
        ):
            return httpx.Response(400, json={"error": "invalid_grant"})
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "officer-4711",
            "aud": CLIENT_ID,
            "iat": now,
            "exp": now + 300,
            "nonce": grant.nonce,
            **self.claims,
            **self.overrides,
        }
        claims = {k: v for k, v in claims.items() if v is not None}
        key = self.sign_with or self.key
        id_token = jwt.encode({"alg": "RS256", "kid": key.kid}, claims, key)
        return httpx.Response(
            200,
            json={"access_token": uuid.uuid4().hex, "token_type": "Bearer", "id_token": id_token},
        )


@pytest.fixture
def provider(signing_key: RSAKey) -> FakeProvider:
    return FakeProvider(signing_key)


@pytest.fixture
def settings(migrated_database: Database) -> Settings:
    return Settings(
        environment="test",
        database_url=migrated_database.url,
        oidc_issuer=ISSUER,
        oidc_client_id=CLIENT_ID,
        oidc_redirect_url=REDIRECT,
    )


@pytest.fixture
def app(
    settings: Settings,
    migrated_database: Database,
    connection: Connection,
    provider: FakeProvider,
) -> FastAPI:
    app = build_app(settings, migrated_database, connection)
    app.state.oidc = OidcClient.from_settings(settings, httpx.MockTransport(provider.handle))
    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def start(client: TestClient, next_path: str = "/ui/queue") -> str:
    reply = client.get(f"/ui/sign-in/oidc?next={quote(next_path)}", follow_redirects=False)
    assert reply.status_code == 303, reply.text
    return reply.headers["location"]


def come_back(client: TestClient, provider: FakeProvider) -> httpx.Response:
    callback, _ = provider.authorize(start(client))
    return client.get(callback, follow_redirects=False)


def sessions(session: Session) -> list[ScreenSession]:
    return list(session.scalars(select(ScreenSession)))


def refused(reply: httpx.Response, session: Session, status: int = 403) -> None:
    assert reply.status_code == status, reply.text
    assert "triage_session=" not in reply.headers.get("set-cookie", "")
    assert sessions(session) == []


def refused_because(client: TestClient, provider: FakeProvider, session: Session) -> str:
    """Go through a sign-in that must be refused; returns the reason logged."""
    with capture_logs() as logs:
        reply = come_back(client, provider)
    refused(reply, session)
    assert "You could not be signed in" in reply.text
    return str(next(e for e in logs if e["event"] == "oidc_sign_in_refused")["reason"])


# --------------------------------------------------------------------------- the happy path


def test_sign_in_with_pkce_maps_the_claims_and_opens_a_session(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    page = client.get("/ui/sign-in")
    assert 'href="/ui/sign-in/oidc?next=' in page.text

    location = start(client, "/ui/queue?area=E09000018")
    callback, query = provider.authorize(location)
    # The verifier stays on the server: the URL carries only its S256 challenge.
    pending = session.scalars(select(OidcPendingSignIn)).one()
    assert query["code_challenge"] == _s256(pending.code_verifier)
    assert pending.code_verifier not in location
    assert query["nonce"] == pending.nonce
    assert pending.state_hash != query["state"]
    assert pending.next_path == "/ui/queue?area=E09000018"

    with capture_logs() as logs:
        reply = client.get(callback, follow_redirects=False)
    assert reply.status_code == 200, reply.text
    # A page that moves on (not a redirect: the Strict cookie would not follow one).
    assert 'http-equiv="refresh" content="0; url=/ui/queue?area=E09000018"' in reply.text
    assert 'id="continue"' in reply.text
    cookie = next(c for c in reply.headers.get_list("set-cookie") if "triage_session=" in c)
    assert "HttpOnly" in cookie
    assert "SameSite=strict" in cookie
    assert "Path=/ui" in cookie

    # The token request carried the verifier; a public client sends no secret.
    token_request = provider.token_requests[0]
    form = parse_qs(token_request.content.decode())
    assert form["code_verifier"] == [pending.code_verifier]
    assert form["client_id"] == [CLIENT_ID]
    assert "authorization" not in token_request.headers

    stored = sessions(session)
    assert len(stored) == 1
    assert stored[0].method == "oidc"
    assert stored[0].role == "triage"
    assert stored[0].areas == ["E09000018"]
    assert stored[0].agency is None
    assert stored[0].principal_id == "oidc:officer-4711"
    assert session.scalar(select(func.count()).select_from(OidcPendingSignIn)) == 0

    # Only the outcome and the role are logged: no code, state or claim.
    logged = json.dumps(logs, default=str)
    code = parse_qs(urlsplit(callback).query)["code"][0]
    for secret in (code, query["state"], query["nonce"], "officer-4711", pending.code_verifier):
        assert secret not in logged
    assert {"event": "screen_signed_in", "method": "oidc", "role": "triage"}.items() <= next(
        e for e in logs if e["event"] == "screen_signed_in"
    ).items()

    # The session works: choose a purpose, then the queue.
    purpose_page = client.get("/ui/purpose")
    assert purpose_page.status_code == 200
    chosen = client.post(
        "/ui/purpose",
        data={"csrf_token": csrf_of(purpose_page.text), "purpose": "triage", "next": "/ui/queue"},
        follow_redirects=False,
    )
    assert chosen.status_code == 303
    queue = client.get("/ui/queue")
    assert queue.status_code == 200
    assert "Signed in as <strong>Triage</strong>" in queue.text


def test_a_school_account_keeps_its_agency_areas_and_schools(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    provider.claims = {
        "triage_role": "agency",
        "triage_agency": "school",
        "triage_areas": ["E09000018"],
        "triage_schools": ["100123"],
    }
    reply = come_back(client, provider)
    assert reply.status_code == 200, reply.text
    stored = sessions(session)[0]
    assert (stored.role, stored.agency, stored.areas, stored.schools) == (
        "agency",
        "school",
        ["E09000018"],
        ["100123"],
    )


def test_a_confidential_client_authenticates_with_its_secret(
    app: FastAPI, client: TestClient, provider: FakeProvider, session: Session
) -> None:
    config = replace(app.state.oidc.config, client_secret="client-secret-for-tests")
    app.state.oidc = OidcClient(config, httpx.MockTransport(provider.handle))
    reply = come_back(client, provider)
    assert reply.status_code == 200, reply.text
    expected = base64.b64encode(f"{CLIENT_ID}:client-secret-for-tests".encode()).decode()
    assert provider.token_requests[0].headers["authorization"] == f"Basic {expected}"
    assert len(sessions(session)) == 1


def test_the_session_may_end_with_the_id_token(
    app: FastAPI, client: TestClient, provider: FakeProvider, session: Session
) -> None:
    app.state.settings = app.state.settings.model_copy(
        update={"oidc_session_until_token_expiry": True}
    )
    provider.overrides = {"exp": int(time.time()) + 600}
    assert come_back(client, provider).status_code == 200
    stored = sessions(session)[0]
    assert abs(stored.expires_at - (utcnow() + timedelta(seconds=600))) < timedelta(seconds=30)


def test_keys_rotated_by_the_provider_are_fetched_again(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    assert come_back(client, provider).status_code == 200
    assert provider.jwks_fetches == 1
    provider.key = RSAKey.generate_key(
        2048, parameters={"kid": "key-2", "use": "sig", "alg": "RS256"}
    )
    client.cookies.clear()
    assert come_back(client, provider).status_code == 200
    assert provider.jwks_fetches == 2
    assert len(sessions(session)) == 2


# --------------------------------------------------------------------------- refusals


def test_a_state_is_good_for_one_callback_only(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    callback, _ = provider.authorize(start(client))
    assert client.get(callback).status_code == 200
    again = client.get(callback, follow_redirects=False)
    assert again.status_code == 400
    assert "This sign-in has expired" in again.text
    assert len(sessions(session)) == 1


def test_an_unknown_state_is_refused(client: TestClient, session: Session) -> None:
    reply = client.get("/ui/sign-in/oidc/callback?code=abc&state=never-issued")
    refused(reply, session, 400)
    assert "never-issued" not in reply.text


def test_a_callback_in_another_browser_signs_nobody_in(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    callback, _ = provider.authorize(start(client))
    client.cookies.clear()  # the link opened elsewhere: no browser binding
    refused(client.get(callback), session, 400)
    # And it is spent: the browser that started cannot use it afterwards either.
    assert session.scalar(select(func.count()).select_from(OidcPendingSignIn)) == 0


def test_a_pending_sign_in_lasts_ten_minutes(session: Session) -> None:
    save_pending(
        session, state="s1", browser="b1", code_verifier="v" * 64, nonce="n1", next_path="/ui/"
    )
    later = utcnow() + timedelta(minutes=11)
    assert take_pending(session, state="s1", browser="b1", now=later) is None
    assert session.scalar(select(func.count()).select_from(OidcPendingSignIn)) == 0
    save_pending(
        session, state="s2", browser="b2", code_verifier="v" * 64, nonce="n2", next_path="/ui/"
    )
    found = take_pending(session, state="s2", browser="b2")
    assert found is not None
    assert found.nonce == "n2"
    assert take_pending(session, state="s2", browser="b2") is None


@pytest.mark.parametrize(
    ("overrides", "reason"),
    [
        ({"nonce": "not-the-one-we-sent"}, "nonce"),
        ({"nonce": None}, "nonce"),
        ({"aud": "another-service"}, "aud"),
        ({"iss": "https://id.elsewhere.example"}, "iss"),
        ({"exp": int(time.time()) - 3600, "iat": int(time.time()) - 7200}, "expired"),
        ({"iat": int(time.time()) + 3600}, "iat"),
    ],
)
def test_an_id_token_with_wrong_claims_is_refused(
    client: TestClient,
    provider: FakeProvider,
    session: Session,
    overrides: dict[str, Any],
    reason: str,
) -> None:
    provider.overrides = overrides
    assert reason in refused_because(client, provider, session)


def test_a_bad_signature_is_refused(
    client: TestClient, provider: FakeProvider, session: Session, other_key: RSAKey
) -> None:
    provider.sign_with = other_key  # same kid, not the published key
    assert "signature" in refused_because(client, provider, session)


def test_an_unsigned_id_token_is_refused(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    def unsigned(request: httpx.Request) -> httpx.Response:
        reply = FakeProvider._token(provider, request)
        if reply.status_code != 200:
            return reply
        body = reply.json()
        _header, payload, _ = body["id_token"].split(".")
        none = base64.urlsafe_b64encode(b'{"alg":"none"}').rstrip(b"=").decode()
        body["id_token"] = f"{none}.{payload}."
        return httpx.Response(200, json=body)

    provider._token = unsigned  # type: ignore[method-assign]
    assert "algorithm is not allowed" in refused_because(client, provider, session)


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"triage_areas": ["E09000018"]}, "triage_role"),  # no role
        ({"triage_role": "superuser", "triage_areas": ["E09000018"]}, "triage_role"),
        ({"triage_role": "agency", "triage_agency": "bank"}, "triage_agency"),
        ({"triage_role": "agency", "triage_agency": "school"}, "triage_schools"),
        ({"triage_role": "triage", "triage_areas": "E09000018"}, "triage_areas"),
    ],
)
def test_claims_that_name_no_valid_role_are_refused(
    client: TestClient,
    provider: FakeProvider,
    session: Session,
    claims: dict[str, Any],
    reason: str,
) -> None:
    provider.claims = claims
    assert reason in refused_because(client, provider, session)


def test_an_unusable_subject_is_refused(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    provider.overrides = {"sub": "x" * 300}
    assert "subject" in refused_because(client, provider, session)


def test_the_provider_refusing_is_a_clear_page(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    _, query = provider.authorize(start(client))
    reply = client.get(
        "/ui/sign-in/oidc/callback?"
        + urlencode(
            {
                "error": "access_denied",
                "error_description": "<b>injected text</b>",
                "state": query["state"],
            }
        )
    )
    refused(reply, session)
    assert "You were not signed in" in reply.text
    assert "injected text" not in reply.text
    assert session.scalar(select(func.count()).select_from(OidcPendingSignIn)) == 0


def test_a_provider_that_cannot_be_reached_is_a_503_page(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    provider.down = True
    reply = client.get("/ui/sign-in/oidc", follow_redirects=False)
    assert reply.status_code == 503
    assert "The sign-in service cannot be reached" in reply.text
    assert session.scalar(select(func.count()).select_from(OidcPendingSignIn)) == 0


def test_a_refused_code_is_refused(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    callback, _ = provider.authorize(start(client))
    provider.grants.clear()  # the provider no longer knows the code
    with capture_logs() as logs:
        refused(client.get(callback), session)
    assert any(e.get("reason") == "the provider refused the code" for e in logs)


def test_without_oidc_there_is_no_such_sign_in(app: FastAPI, client: TestClient) -> None:
    app.state.oidc = None
    assert client.get("/ui/sign-in/oidc").status_code == 404
    assert "/ui/sign-in/oidc" not in client.get("/ui/sign-in").text


# --------------------------------------------------------------------------- settings


def test_settings_refuse_half_an_oidc_configuration() -> None:
    with pytest.raises(ValidationError, match="both"):
        Settings(environment="test", oidc_issuer=ISSUER)
    with pytest.raises(ValidationError, match="REDIRECT_URL"):
        Settings(environment="test", oidc_issuer=ISSUER, oidc_client_id=CLIENT_ID)
    with pytest.raises(ValidationError, match="openid"):
        Settings(
            environment="test",
            oidc_issuer=ISSUER,
            oidc_client_id=CLIENT_ID,
            oidc_redirect_url=REDIRECT,
            oidc_scopes="profile",
        )
    with pytest.raises(ValidationError, match="https"):
        Settings(
            environment="production",
            database_url="postgresql+psycopg://db/triage",
            api_keys_configured=True,
            oidc_issuer="http://id.force.example",
            oidc_client_id=CLIENT_ID,
            oidc_redirect_url="https://triage.example/ui/sign-in/oidc/callback",
        )
    with pytest.raises(ValidationError, match="asymmetric"):
        Settings(environment="test", oidc_algorithms=["HS256"])
    off = Settings(environment="test")
    assert not off.oidc_enabled
    assert OidcClient.from_settings(off) is None


def test_a_provider_naming_another_issuer_is_not_trusted(
    client: TestClient, provider: FakeProvider, session: Session
) -> None:
    provider.metadata = lambda: {  # type: ignore[method-assign]
        **FakeProvider.metadata(provider),
        "issuer": "https://id.elsewhere.example",
    }
    reply = client.get("/ui/sign-in/oidc", follow_redirects=False)
    assert reply.status_code == 503
    assert session.scalar(select(func.count()).select_from(OidcPendingSignIn)) == 0
