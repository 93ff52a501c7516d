"""JWT bearer tokens from a force's identity provider (OWASP API2, RFC 8725).

A throwaway RSA key pair is generated per test module; its public half is published as
the JWKS the service is configured with. All claims and identities are invented.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import FastAPI
from fastapi.testclient import TestClient
from jwt.algorithms import RSAAlgorithm
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.audit.chain import seal_all
from app.audit.models import AuditEvent
from app.auth.jwt import JwtVerifier, TokenError
from app.config import Settings
from app.db import Database
from tests.auth.scenario import PROBLEM, incident_body
from tests.conftest import build_app

ISSUER = "https://idp.force-a.example/realms/triage"
AUDIENCE = "da-triage"
KID = "test-key-1"
PURPOSE = {"X-Purpose": "triage"}


@pytest.fixture(scope="module")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="module")
def jwks(rsa_key: rsa.RSAPrivateKey) -> dict[str, Any]:
    public = RSAAlgorithm.to_jwk(rsa_key.public_key(), as_dict=True)
    return {"keys": [{**public, "kid": KID, "use": "sig", "alg": "RS256"}]}


@pytest.fixture
def jwt_settings(migrated_database: Database, jwks: dict[str, Any]) -> Settings:
    return Settings(
        environment="test",
        database_url=migrated_database.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_json=json.dumps(jwks),
    )


@pytest.fixture
def jwt_client(
    jwt_settings: Settings, migrated_database: Database, connection: Connection
) -> Iterator[TestClient]:
    app: FastAPI = build_app(jwt_settings, migrated_database, connection)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    base: dict[str, Any] = {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "user-7731",
        "iat": now,
        "exp": now + 300,
        "triage_role": "triage",
        "triage_areas": ["E09000018"],
    }
    base.update(overrides)
    return {k: v for k, v in base.items() if v is not None}


def school_claims(**overrides: Any) -> dict[str, Any]:
    return claims(
        **{
            "triage_role": "agency",
            "triage_agency": "school",
            "triage_schools": ["100123"],
            **overrides,
        }
    )


def sign(
    private_key: Any, payload: dict[str, Any], *, kid: str | None = KID, alg: str = "RS256"
) -> str:
    headers = {"kid": kid} if kid is not None else {}
    return jwt.encode(payload, private_key, algorithm=alg, headers=headers)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def crafted(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    """A token assembled by hand, as an attacker would."""
    signing_input = _b64(json.dumps(header).encode()) + "." + _b64(json.dumps(payload).encode())
    return signing_input + "." + _b64(signature)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}", **PURPOSE}


# --------------------------------------------------------------------------- accepted


def test_a_valid_token_authenticates_with_the_role_it_carries(
    jwt_client: TestClient, rsa_key: rsa.RSAPrivateKey, session: Session
) -> None:
    submitter = sign(
        rsa_key,
        claims(sub="rms-7", triage_role="submitter", triage_source_system="force-a-records"),
    )
    created = jwt_client.post("/v1/incidents", json=incident_body(), headers=bearer(submitter))
    assert created.status_code == 201, created.text
    incident_id = created.json()["incident_id"]

    triage = sign(rsa_key, claims(sub="user-7731"))
    r = jwt_client.get(f"/v1/incidents/{incident_id}", headers=bearer(triage))
    assert r.status_code == 200, r.text
    # The role comes from the token: a triage token may not submit.
    assert (
        jwt_client.post("/v1/incidents", json=incident_body(), headers=bearer(triage)).status_code
        == 403
    )

    seal_all(session)  # reads' events wait to be chained on PostgreSQL
    consult = session.scalars(
        select(AuditEvent).where(AuditEvent.operation == "consult").order_by(AuditEvent.seq)
    ).all()[-1]
    assert (consult.principal_id, consult.role) == ("jwt:user-7731", "triage")


def test_a_token_without_kid_is_accepted_when_the_jwks_has_one_key(
    jwt_client: TestClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key, claims(triage_role="auditor"), kid=None)
    assert jwt_client.get("/v1/audit/verify", headers=bearer(token)).status_code == 200


def test_area_scope_comes_from_the_token(
    jwt_client: TestClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    submitter = sign(
        rsa_key, claims(triage_role="submitter", triage_source_system="force-a-records")
    )
    created = jwt_client.post("/v1/incidents", json=incident_body(), headers=bearer(submitter))
    other_area = sign(rsa_key, claims(triage_areas=["E09000019"]))
    r = jwt_client.get(f"/v1/incidents/{created.json()['incident_id']}", headers=bearer(other_area))
    assert r.status_code == 404


def test_an_agency_token_names_its_agency_adult_social_care_included(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, algorithms=["RS256"])
    principal = verifier.verify(
        sign(rsa_key, claims(triage_role="agency", triage_agency="adult_social_care"))
    )
    assert (principal.role, principal.agency) == ("agency", "adult_social_care")
    assert principal.areas == frozenset({"E09000018"})


def test_a_school_token_carries_its_schools_and_other_tokens_have_none(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, algorithms=["RS256"])
    school = verifier.verify(
        sign(rsa_key, school_claims(triage_schools=["100123", "20045678", "100123"]))
    )
    assert (school.agency, school.schools) == ("school", frozenset({"100123", "20045678"}))
    # On any other token the claim means nothing (as triage_source_system on a non-submitter).
    for other in (
        claims(triage_schools=["100123"]),
        claims(triage_role="agency", triage_agency="csc", triage_schools=["100123"]),
        claims(triage_agency="school", triage_schools=None),  # a triage token
    ):
        principal = verifier.verify(sign(rsa_key, other))
        assert principal.schools == frozenset()


def test_a_school_token_sees_only_its_pupils(
    jwt_client: TestClient, rsa_key: rsa.RSAPrivateKey, session: Session
) -> None:
    submitter = sign(
        rsa_key, claims(triage_role="submitter", triage_source_system="force-a-records")
    )
    created = jwt_client.post("/v1/incidents", json=incident_body(), headers=bearer(submitter))
    assert created.status_code == 201, created.text
    incident_id = created.json()["incident_id"]
    ours = bearer(sign(rsa_key, school_claims()))  # the example child's school
    theirs = bearer(sign(rsa_key, school_claims(triage_schools=["20045678"])))
    mine = jwt_client.get("/v1/flags", params={"incident_id": incident_id}, headers=ours)
    assert mine.status_code == 200
    assert {f["subject_ref"] for f in mine.json()["items"]} == {"c1"}
    flag_id = mine.json()["items"][0]["id"]
    assert jwt_client.get(f"/v1/flags/{flag_id}", headers=theirs).status_code == 404
    listing = jwt_client.get("/v1/flags", params={"incident_id": incident_id}, headers=theirs)
    assert listing.json()["items"] == []
    assert jwt_client.get(f"/v1/incidents/{incident_id}", headers=ours).status_code == 200
    assert jwt_client.get(f"/v1/incidents/{incident_id}", headers=theirs).status_code == 404


# --------------------------------------------------------------------------- refused


def _refused_tokens(key: rsa.RSAPrivateKey) -> dict[str, str]:
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ec_key = ec.generate_private_key(ec.SECP256R1())
    hs_header = {"alg": "HS256", "typ": "JWT", "kid": KID}
    hs_input = (
        _b64(json.dumps(hs_header).encode()) + "." + _b64(json.dumps(claims()).encode())
    ).encode()
    now = int(time.time())
    return {
        "expired": sign(key, claims(iat=now - 3600, exp=now - 600)),
        "wrong-audience": sign(key, claims(aud="another-service")),
        "wrong-issuer": sign(key, claims(iss="https://idp.elsewhere.example")),
        "missing-sub": sign(key, claims(sub=None)),
        "missing-exp": sign(key, claims(exp=None)),
        "missing-triage-role": sign(key, claims(triage_role=None)),
        "unknown-triage-role": sign(key, claims(triage_role="superuser")),
        "agency-without-agency": sign(key, claims(triage_role="agency")),
        "submitter-without-source-system": sign(key, claims(triage_role="submitter")),
        # A school token names the schools (URNs) whose pupils it may see.
        "school-without-schools": sign(key, school_claims(triage_schools=None)),
        "school-with-no-school": sign(key, school_claims(triage_schools=[])),
        "school-with-a-malformed-urn": sign(key, school_claims(triage_schools=["12-345"])),
        "school-schools-not-a-list": sign(key, school_claims(triage_schools="100123")),
        "alg-none": crafted({"alg": "none", "typ": "JWT"}, claims()),
        "alg-none-with-kid": crafted({"alg": "none", "kid": KID}, claims()),
        "hs256-signed-with-the-public-key": crafted(
            hs_header, claims(), hmac.new(public_pem, hs_input, hashlib.sha256).digest()
        ),
        "unknown-kid": sign(key, claims(), kid="rotated-away"),
        "signed-by-another-key": sign(other_key, claims()),
        # ES256 is configured, but the key it names is RSA.
        "es256-naming-the-rsa-key": sign(ec_key, claims(), alg="ES256"),
        "kid-not-a-string": crafted({"alg": "RS256", "kid": [KID]}, claims(), b"x"),
        "tampered-payload": _tamper(sign(key, claims(triage_role="triage"))),
        "garbage": "not.a.jwt",
    }


def _tamper(token: str) -> str:
    header, _payload, signature = token.split(".")
    return ".".join([header, _b64(json.dumps(claims(triage_role="auditor")).encode()), signature])


REFUSED = [
    "expired",
    "wrong-audience",
    "wrong-issuer",
    "missing-sub",
    "missing-exp",
    "missing-triage-role",
    "unknown-triage-role",
    "agency-without-agency",
    "submitter-without-source-system",
    "school-without-schools",
    "school-with-no-school",
    "school-with-a-malformed-urn",
    "school-schools-not-a-list",
    "alg-none",
    "alg-none-with-kid",
    "hs256-signed-with-the-public-key",
    "unknown-kid",
    "signed-by-another-key",
    "es256-naming-the-rsa-key",
    "kid-not-a-string",
    "tampered-payload",
    "garbage",
]


@pytest.fixture(scope="module")
def refused_tokens(rsa_key: rsa.RSAPrivateKey) -> dict[str, str]:
    return _refused_tokens(rsa_key)


def test_every_unacceptable_token_is_401_with_www_authenticate(
    jwt_client: TestClient, refused_tokens: dict[str, str]
) -> None:
    accepted = []
    for kind in REFUSED:
        r = jwt_client.get("/v1/audit/verify", headers=bearer(refused_tokens[kind]))
        if r.status_code != 401:
            accepted.append(f"{kind}: {r.status_code}")
            continue
        assert r.headers["content-type"] == PROBLEM
        assert r.headers["www-authenticate"].startswith("Bearer")
    assert not accepted


def test_every_refused_token_is_refused_by_the_verifier_itself(
    jwks: dict[str, Any], refused_tokens: dict[str, str]
) -> None:
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks=jwks, algorithms=["RS256", "ES256", "PS256"]
    )
    assert set(refused_tokens) == set(REFUSED)
    for kind, token in refused_tokens.items():
        with pytest.raises(TokenError):
            verifier.verify(token)
        assert kind  # (names the case in a failure's traceback)


def test_a_key_published_for_one_algorithm_is_used_for_no_other(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey
) -> None:
    # The JWKS key says RS256; a PS256 token naming it is refused even though the key
    # type could verify it and PS256 is configured.
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks=jwks, algorithms=["RS256", "PS256"]
    )
    with pytest.raises(TokenError, match="does not fit"):
        verifier.verify(sign(rsa_key, claims(), alg="PS256"))
    assert verifier.verify(sign(rsa_key, claims())).role == "triage"


def test_a_key_without_alg_accepts_every_configured_algorithm_of_its_type(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey
) -> None:
    bare = {"keys": [{k: v for k, v in jwks["keys"][0].items() if k != "alg"}]}
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks=bare, algorithms=["RS256", "PS256", "ES256"]
    )
    assert verifier.verify(sign(rsa_key, claims(), alg="PS256")).role == "triage"
    assert verifier.verify(sign(rsa_key, claims(), alg="RS256")).role == "triage"


@pytest.mark.parametrize(
    "jwks_doc",
    [
        {"keys": []},
        {"keys": [{"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}]},
    ],
    ids=["empty", "only-a-symmetric-key"],
)
def test_a_jwks_without_an_asymmetric_signing_key_is_refused(jwks_doc: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="no asymmetric signing key"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks_doc, algorithms=["RS256"])


def test_keys_published_for_encryption_are_never_used_to_verify(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey
) -> None:
    enc = {**jwks["keys"][0], "kid": "enc-key", "use": "enc"}
    verifier = JwtVerifier(
        issuer=ISSUER, audience=AUDIENCE, jwks={"keys": [*jwks["keys"], enc]}, algorithms=["RS256"]
    )
    with pytest.raises(TokenError, match="unknown signing key"):
        verifier.verify(sign(rsa_key, claims(), kid="enc-key"))


def test_jwt_is_refused_when_no_identity_provider_is_configured(
    client: TestClient, rsa_key: rsa.RSAPrivateKey
) -> None:
    token = sign(rsa_key, claims(triage_role="auditor"))
    assert client.get("/v1/audit/verify", headers=bearer(token)).status_code == 401


# --------------------------------------------------------------------------- configuration


@pytest.mark.parametrize("algorithms", [["HS256"], ["RS256", "HS512"], ["none"], ["RS256", "none"]])
def test_configuring_a_non_asymmetric_algorithm_stops_the_service_starting(
    jwks: dict[str, Any], algorithms: list[str]
) -> None:
    # Refused when the settings are read, before any app or verifier exists ...
    with pytest.raises(ValueError, match="asymmetric"):
        Settings(
            environment="test",
            database_url="sqlite://",
            jwt_issuer=ISSUER,
            jwt_audience=AUDIENCE,
            jwt_jwks_json=json.dumps(jwks),
            jwt_algorithms=algorithms,
        )
    # ... and by the verifier itself, whatever builds it.
    with pytest.raises(ValueError, match="asymmetric"):
        JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, algorithms=algorithms)


def test_the_verifier_reads_the_jwks_from_a_file(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey, tmp_path: Any
) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(jwks), "utf-8")
    settings = Settings(
        environment="test",
        database_url="sqlite://",
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_jwks_path=str(path),
    )
    verifier = JwtVerifier.from_settings(settings)
    assert verifier is not None
    principal = verifier.verify(sign(rsa_key, claims(triage_role="auditor")))
    assert (principal.role, principal.kind, principal.id) == ("auditor", "jwt", "jwt:user-7731")


def test_names_in_tokens_are_never_kept_on_the_principal(
    jwks: dict[str, Any], rsa_key: rsa.RSAPrivateKey
) -> None:
    verifier = JwtVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=jwks, algorithms=["RS256"])
    principal = verifier.verify(
        sign(rsa_key, claims(name="Quillon Marchbanks-Ytterby", name_hint="Quillon"))
    )
    assert "Quillon" not in repr(principal)
