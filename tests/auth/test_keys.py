"""API keys: revocation, expiry, the `triage keys` commands, and failed-authentication logs.

Keys are made in the test's own database; secrets are random and never real.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session
from structlog.testing import capture_logs

from app.auth.cli import DEMO_KEYS
from app.auth.keys import (
    KEY_PREFIX,
    KeyCache,
    KeySpecError,
    create_key,
    hash_key,
    principal_for_key,
    revoke_key,
)
from app.auth.models import ApiKey
from app.auth.principal import Principal
from app.cli import main as triage
from app.config import Settings, get_settings
from app.db import Database, utcnow
from app.ops.migrations import upgrade_to_head
from tests.auth.scenario import incident_body
from tests.conftest import KeyMaker, build_app, example_incident

PURPOSE = {"X-Purpose": "triage"}
VERIFY = "/v1/audit/verify"


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", **PURPOSE}


def test_a_key_is_stored_only_as_its_sha256(session: Session) -> None:
    issued = create_key(session, role="auditor", label="test")
    row = session.get(ApiKey, issued.id)
    assert row is not None
    assert row.key_hash == hash_key(issued.secret) != issued.secret
    assert issued.secret.startswith(row.prefix + "_")
    assert issued.secret not in {str(v) for v in vars(row).values()}


@pytest.fixture
def uncached_client(
    settings: Settings, migrated_database: Database, connection: Connection
) -> Iterator[TestClient]:
    """Every request looks its key up (``TRIAGE_API_KEY_CACHE_SECONDS=0``)."""
    app = build_app(
        settings.model_copy(update={"api_key_cache_seconds": 0}), migrated_database, connection
    )
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_a_revoked_key_is_401(uncached_client: TestClient, session: Session) -> None:
    client = uncached_client
    issued = create_key(session, role="auditor")
    session.commit()
    assert client.get(VERIFY, headers=bearer(issued.secret)).status_code == 200
    assert revoke_key(session, issued.id)
    session.commit()
    r = client.get(VERIFY, headers=bearer(issued.secret))
    assert r.status_code == 401
    assert r.headers["www-authenticate"].startswith("Bearer")
    assert not revoke_key(session, issued.id)  # revoking twice reports nothing to revoke


def test_a_key_revoked_by_another_process_stops_working_within_the_cache_time(
    settings: Settings, migrated_database: Database, connection: Connection, session: Session
) -> None:
    ttl = 0.3
    app = build_app(
        settings.model_copy(update={"api_key_cache_seconds": ttl}), migrated_database, connection
    )
    issued = create_key(session, role="auditor")
    session.commit()
    with TestClient(app, raise_server_exceptions=False) as client:
        assert client.get(VERIFY, headers=bearer(issued.secret)).status_code == 200
        assert revoke_key(session, issued.id)  # as `triage keys revoke` would, elsewhere
        session.commit()
        # Remembered for at most `ttl` seconds, then looked up again and refused.
        time.sleep(ttl + 0.05)
        assert client.get(VERIFY, headers=bearer(issued.secret)).status_code == 401


def test_a_key_cache_never_outlives_a_revocation_made_while_it_looked_up() -> None:
    cache = KeyCache(ttl=60)
    principal = Principal(id="key:x", kind="api_key", role="auditor")
    started = cache.generation
    cache.forget_all()  # a revocation commits while the lookup is in flight
    cache.put("digest", principal, time.monotonic() + 60, started)
    assert cache.get("digest", time.monotonic()) is None
    cache.put("digest", principal, time.monotonic() + 60, cache.generation)
    assert cache.get("digest", time.monotonic()) == principal


def test_an_expired_key_is_401(client: TestClient, session: Session) -> None:
    long_ago = utcnow() - timedelta(days=3)
    expired = create_key(session, role="auditor", expires_in_days=1, now=long_ago)
    current = create_key(session, role="auditor", expires_in_days=1)
    session.commit()
    assert client.get(VERIFY, headers=bearer(expired.secret)).status_code == 401
    assert client.get(VERIFY, headers=bearer(current.secret)).status_code == 200


def test_a_key_expires_at_its_expiry_time_exactly(session: Session) -> None:
    now = utcnow()
    issued = create_key(session, role="auditor", expires_in_days=1, now=now)
    assert principal_for_key(session, issued.secret, now=now + timedelta(days=1, seconds=-1))
    assert principal_for_key(session, issued.secret, now=now + timedelta(days=1)) is None


def test_unknown_or_malformed_keys_have_no_principal(session: Session) -> None:
    for secret in (
        "tri_deadbeef_" + "A" * 43,  # well-formed but unknown
        "tri_" + "x" * 300,  # absurdly long
        "",
        "tri_",
    ):
        assert principal_for_key(session, secret) is None, secret


def test_the_principal_carries_the_keys_role_agency_areas_schools_and_source_system(
    session: Session,
) -> None:
    agency = create_key(
        session,
        role="agency",
        agency="school",
        areas=["E09000018", "E09000019"],
        schools=["100123", "20045678", "100123"],
    )
    submitter = create_key(session, role="submitter", source_system="force-a-records")
    a = principal_for_key(session, agency.secret)
    s = principal_for_key(session, submitter.secret)
    assert a is not None
    assert s is not None
    assert (a.role, a.agency, a.areas, a.schools, a.id) == (
        "agency",
        "school",
        frozenset({"E09000018", "E09000019"}),
        frozenset({"100123", "20045678"}),
        f"key:{agency.id}",
    )
    assert (s.role, s.source_system, s.kind, s.schools) == (
        "submitter",
        "force-a-records",
        "api_key",
        frozenset(),
    )
    row = session.get(ApiKey, agency.id)
    assert row is not None
    assert row.schools == ["100123", "20045678"]


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"agency": "school"}, "a school key needs at least one --school"),
        ({"agency": "school", "schools": []}, "a school key needs at least one --school"),
        ({"agency": "csc", "schools": ["100123"]}, "--school is only for agency school"),
        ({"agency": "school", "schools": ["12345"]}, "a school URN is 6 to 8 digits"),
        ({"agency": "school", "schools": ["123456789"]}, "a school URN is 6 to 8 digits"),
        ({"agency": "school", "schools": ["10O123"]}, "a school URN is 6 to 8 digits"),
        ({"agency": "school", "schools": ["100123\n"]}, "a school URN is 6 to 8 digits"),
        (
            {"agency": "school", "schools": [str(n) for n in range(100000, 100051)]},
            "a school key serves at most",
        ),
    ],
)
def test_a_school_key_names_its_schools_and_only_a_school_key_does(
    session: Session, spec: dict[str, Any], message: str
) -> None:
    with pytest.raises(KeySpecError) as refused:
        create_key(session, role="agency", areas=["E09000018"], **spec)
    assert str(refused.value).startswith(message)
    for urn in spec.get("schools", [])[:3]:
        assert urn not in str(refused.value)  # never repeats what was given
    with pytest.raises(KeySpecError):
        create_key(session, role="triage", areas=["E09000018"], schools=["100123"])
    assert session.scalars(select(ApiKey)).all() == []


def test_a_school_key_made_before_keys_named_schools_sees_nothing(
    client: TestClient, session: Session, make_key: KeyMaker
) -> None:
    # Legacy: a school key with no schools stored (NULL) still authenticates, and its
    # principal has no school, so every listing is empty and every flag a 404.
    headers = make_key("agency", agency="school", schools=["100123"])
    row = session.scalars(select(ApiKey).where(ApiKey.agency == "school")).one()
    row.schools = None
    session.commit()
    principal = principal_for_key(session, headers["Authorization"].removeprefix("Bearer "))
    assert principal is not None
    assert (principal.agency, principal.schools) == ("school", frozenset())
    submitter = make_key("submitter")
    incident = client.post("/v1/incidents", json=incident_body(), headers=submitter)
    assert incident.status_code == 201
    r = client.get("/v1/flags", headers=headers)
    assert r.status_code == 200
    assert r.json()["items"] == []
    triage = make_key("triage")
    mine = client.get("/v1/flags", params={"agency": "school"}, headers=triage).json()["items"]
    assert mine  # intake raised a school flag: the legacy key does not see it
    assert client.get(f"/v1/flags/{mine[0]['id']}", headers=headers).status_code == 404
    iid = incident.json()["incident_id"]
    assert client.get(f"/v1/incidents/{iid}", headers=headers).status_code == 404


# --------------------------------------------------------------------------- failed authentication


def _secret_like(marker: str) -> str:
    return f"{KEY_PREFIX}0badc0de_{marker}"


FAILED_CREDENTIALS = {
    "unknown-api-key": "Bearer " + _secret_like("SecretMarkerQx7Zp9"),
    "jwt-without-idp": "Bearer eyJhbGciOiJSUzI1NiJ9.SecretMarkerQx7Zp9.sig",
    "basic-auth": "Basic U2VjcmV0TWFya2VyUXg3WnA5",
    "opaque-token": "Bearer SecretMarkerQx7Zp9",
    "missing": None,
}


def test_failed_authentication_is_logged_without_the_presented_secret(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for kind, authorization in FAILED_CREDENTIALS.items():
        headers = (
            dict(PURPOSE) if authorization is None else {"Authorization": authorization, **PURPOSE}
        )
        # The structured event itself...
        with capture_logs() as events:
            r = client.get(VERIFY, headers=headers)
        assert r.status_code == 401, kind
        failures = [e for e in events if e.get("event") == "authentication_failed"]
        assert len(failures) == 1, kind
        reason = failures[0].get("reason")
        assert reason, kind
        if authorization is None:
            assert reason == "missing_credentials"
        for event in events:
            assert "SecretMarkerQx7Zp9" not in repr(event), kind
            if authorization:
                assert authorization.split(" ", 1)[1] not in repr(event), kind
        assert "SecretMarkerQx7Zp9" not in r.text
        # ... and as the service's logging renders it.
        client.get(VERIFY, headers=headers)
    assert caplog.text.count("authentication_failed") >= len(FAILED_CREDENTIALS)
    assert "SecretMarkerQx7Zp9" not in caplog.text
    assert "U2VjcmV0TWFya2VyUXg3WnA5" not in caplog.text


# --------------------------------------------------------------------------- CLI


@pytest.fixture
def cli_database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """A migrated SQLite file that `triage` commands use through TRIAGE_DATABASE_URL."""
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade_to_head(url)
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    monkeypatch.setenv("TRIAGE_ENVIRONMENT", "test")
    # `triage` itself (it imports only the module of the command run).
    get_settings.cache_clear()
    database = Database(url)
    yield database
    database.dispose()
    get_settings.cache_clear()


def _run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str]:
    code = triage(list(argv))
    return code, capsys.readouterr().out


def test_keys_create_list_revoke_round_trip(
    cli_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(
        capsys,
        "keys",
        "create",
        "--role",
        "agency",
        "--agency",
        "school",
        "--school",
        "100123",
        "--school",
        "20045678",
        "--area",
        "E09000018",
        "--label",
        "test school lead",
        "--expires-in-days",
        "30",
    )
    assert code == 0, out
    key_id = re.search(r"key id: (\S+)", out)
    secret = re.search(r"secret: (\S+)", out)
    assert key_id
    assert secret
    with cli_database.session() as s:
        principal = principal_for_key(s, secret.group(1))
        assert principal is not None
        assert (principal.role, principal.agency) == ("agency", "school")
        assert principal.schools == frozenset({"100123", "20045678"})
        row = s.get(ApiKey, uuid.UUID(key_id.group(1)))
        assert row is not None
        assert row.expires_at is not None

    code, listing = _run(capsys, "keys", "list")
    assert code == 0
    assert key_id.group(1) in listing
    assert "100123,20045678" in listing
    assert "active" in listing
    assert secret.group(1) not in listing  # the secret is shown once, at creation

    code, out = _run(capsys, "keys", "revoke", key_id.group(1))
    assert (code, out.strip()) == (0, "revoked")
    code, out = _run(capsys, "keys", "revoke", key_id.group(1))
    assert code == 1
    code, listing = _run(capsys, "keys", "list")
    assert "revoked" in listing
    with cli_database.session() as s:
        assert principal_for_key(s, secret.group(1)) is None


def test_keys_create_makes_an_adult_social_care_key(
    cli_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(
        capsys,
        "keys",
        "create",
        "--role",
        "agency",
        "--agency",
        "adult_social_care",
        "--area",
        "E09000018",
    )
    assert code == 0, out
    secret = re.search(r"secret: (\S+)", out)
    assert secret
    with cli_database.session() as s:
        principal = principal_for_key(s, secret.group(1))
        assert principal is not None
        assert (principal.role, principal.agency) == ("agency", "adult_social_care")


def test_keys_create_refuses_an_inconsistent_key_and_stores_nothing(
    cli_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    for argv in (
        ["--role", "agency", "--area", "E09000018"],  # agency key without --agency
        ["--role", "triage"],  # triage key without an area
        ["--role", "submitter"],  # submitter without --source-system
        ["--role", "auditor", "--agency", "school"],  # agency on a non-agency key
        ["--role", "agency", "--agency", "school", "--area", "E09000018"],  # school, no URN
        ["--role", "agency", "--agency", "csc", "--area", "E09000018", "--school", "100123"],
        ["--role", "triage", "--area", "E09000018", "--school", "100123"],
        ["--role", "agency", "--agency", "school", "--area", "E09000018", "--school", "12-34"],
        ["--role", "triage", "--area", "E09000018", "--source-system", "x"],
    ):
        code, out = _run(capsys, "keys", "create", *argv)
        assert code == 2, argv
        assert out.startswith("error:")
        assert out.count("\n") == 1, out  # one line
        assert "12-34" not in out  # never repeats what was given
    with cli_database.session() as s:
        assert s.scalars(select(ApiKey)).all() == []


def test_demo_keys_are_refused_outside_development(
    cli_database: Database, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = _run(capsys, "keys", "demo")
    assert code == 2
    assert "development" in out


def test_demo_keys_replace_the_previous_demo_keys(
    cli_database: Database, capsys: pytest.CaptureFixture[str], monkeypatch: Any
) -> None:
    monkeypatch.setenv("TRIAGE_ENVIRONMENT", "development")
    get_settings.cache_clear()
    assert _run(capsys, "keys", "demo")[0] == 0
    code, out = _run(capsys, "keys", "demo")
    assert code == 0
    secrets_now = re.findall(r"(tri_\S+)", out)
    assert len(secrets_now) == len(DEMO_KEYS) == 7
    with cli_database.session() as s:
        active = [k for k in s.scalars(select(ApiKey)) if k.revoked_at is None]
        assert len(active) == 7
        assert all(principal_for_key(s, secret) for secret in secrets_now)
        # The demo school serves the school of the example incident's child.
        (school,) = [k for k in active if k.agency == "school"]
        urns = {
            p["child"]["school"]["urn"]
            for p in example_incident()["persons"]
            if p.get("child", {}).get("school")
        }
        assert school.schools == sorted(urns)
