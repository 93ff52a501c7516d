"""Hardening (OWASP API4, API8): write rate limit, security headers, no CORS, readiness,
metrics labelled by route template, no docs in production. All data is invented.
"""

from __future__ import annotations

import base64
import hashlib
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.engine import Connection

from app.auth.ratelimit import LocalRateLimiter, retry_after_header
from app.config import Settings
from app.db import Database
from tests.auth import scenario
from tests.auth.scenario import PROBLEM, incident_body, post_incident
from tests.conftest import KeyMaker, build_app

# One application for this module instead of one per test (see tests/auth/scenario.py).
client = scenario.client
module_app = scenario.module_app

SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}


# --------------------------------------------------------------------------- rate limit


@pytest.fixture
def limited_client(migrated_database: Database, connection: Connection) -> Iterator[TestClient]:
    settings = Settings(
        environment="test", database_url=migrated_database.url, write_rate_per_minute=2
    )
    app: FastAPI = build_app(settings, migrated_database, connection)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def test_the_third_write_in_a_minute_is_429_with_retry_after(
    limited_client: TestClient, make_key: KeyMaker
) -> None:
    submitter = make_key("submitter")
    body = incident_body()
    assert limited_client.post("/v1/incidents", json=body, headers=submitter).status_code == 201
    assert limited_client.post("/v1/incidents", json=body, headers=submitter).status_code == 200
    r = limited_client.post("/v1/incidents", json=incident_body(), headers=submitter)
    assert r.status_code == 429
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/rate-limited")
    assert 1 <= int(r.headers["retry-after"]) <= 60


def test_the_rate_limit_is_per_principal_and_on_writes_only(
    limited_client: TestClient, make_key: KeyMaker
) -> None:
    first, second = make_key("submitter"), make_key("submitter")
    iid = post_incident(limited_client, first, incident_body())
    for _ in range(5):  # reads do not count
        assert limited_client.get(f"/v1/incidents/{iid}", headers=first).status_code == 200
    assert (
        limited_client.post("/v1/incidents", json=incident_body(), headers=first).status_code == 201
    )
    assert (
        limited_client.post("/v1/incidents", json=incident_body(), headers=first).status_code == 429
    )
    # Another credential has its own allowance.
    assert (
        limited_client.post("/v1/incidents", json=incident_body(), headers=second).status_code
        == 201
    )


def test_the_rate_limit_window_slides() -> None:
    now = [1000.0]
    limiter = LocalRateLimiter(2, clock=lambda: now[0])
    assert limiter.hit_now("p") is None
    now[0] += 10
    assert limiter.hit_now("p") is None
    wait = limiter.hit_now("p")
    assert wait == pytest.approx(50.0)
    assert retry_after_header(wait or 0) == "50"
    now[0] += 50
    assert limiter.hit_now("p") is None  # the first write left the window
    assert LocalRateLimiter(0).hit_now("p") is None  # 0 disables the limit


def test_retry_after_is_a_whole_number_of_seconds_at_least_one() -> None:
    assert retry_after_header(0.0) == "1"
    assert retry_after_header(0.2) == "1"
    assert retry_after_header(59.01) == "60"


# --------------------------------------------------------------------------- headers and CORS


def test_security_headers_on_v1_responses_errors_and_probes(
    client: TestClient, make_key: KeyMaker
) -> None:
    auditor = make_key("auditor")
    responses = {
        "v1 200": client.get("/v1/audit/verify", headers=auditor),
        "v1 401": client.get("/v1/audit/verify"),
        "v1 404": client.get(f"/v1/incidents/{uuid.uuid4()}", headers=make_key("triage")),
        "unknown route": client.get("/v1/nothing-here"),
        "livez": client.get("/livez"),
        "readyz": client.get("/readyz"),
    }
    for name, r in responses.items():
        for header, value in SECURITY_HEADERS.items():
            assert r.headers.get(header) == value, (name, header)
        assert "max-age=" in r.headers["strict-transport-security"], name
        assert "default-src 'none'" in r.headers["content-security-policy"], name
        assert "server" not in r.headers, name
        assert r.headers["x-request-id"], name


def test_api_docs_are_served_from_the_package_under_a_strict_script_policy(
    client: TestClient,
) -> None:
    """No CDN, and no inline script but Swagger UI's start-up, allowed by its hash."""
    for path, asset in (("/docs", "swagger-ui-bundle.js"), ("/redoc", "redoc.standalone.js")):
        r = client.get(path)
        assert r.status_code == 200, path
        assert f'src="/docs-static/{asset}"' in r.text, path
        assert "https://" not in r.text, path
        assert '<html lang="en">' in r.text, path
        policy = dict(
            part.strip().split(" ", 1) for part in r.headers["content-security-policy"].split(";")
        )
        assert policy["default-src"] == "'none'", path
        assert "unsafe" not in policy["script-src"], path
        assert policy["frame-ancestors"] == "'none'", path
        assert client.get(f"/docs-static/{asset}").status_code == 200, asset
    page = client.get("/docs")
    inline = page.text.split("<script>", 1)[1].split("</script>", 1)[0]
    digest = base64.b64encode(hashlib.sha256(inline.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in page.headers["content-security-policy"]
    # Static files and the API keep the default policy.
    assert client.get("/docs-static/swagger-ui.css").headers["content-security-policy"] == (
        "default-src 'none'; frame-ancestors 'none'"
    )


def test_no_cors_by_default(client: TestClient, make_key: KeyMaker) -> None:
    origin = {"Origin": "https://evil.example"}
    for path in ("/v1/incidents", "/v1/audit/events", "/livez"):
        preflight = client.options(
            path,
            headers={
                **origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type",
            },
        )
        simple = client.get(path, headers={**origin, **make_key("auditor")})
        for r in (preflight, simple):
            assert not [h for h in r.headers if h.lower().startswith("access-control-")], path
        assert preflight.status_code in (404, 405), path


# --------------------------------------------------------------------------- readiness


def test_readyz_is_200_on_a_migrated_database(client: TestClient) -> None:
    r = client.get("/readyz")
    assert (r.status_code, r.json()["status"]) == (200, "ready")
    assert client.get("/livez").json() == {"status": "ok"}


def _app_on(url: str) -> TestClient:
    return TestClient(
        build_app(Settings(environment="test", database_url=url), Database(url), None),
        raise_server_exceptions=False,
    )


def test_readyz_is_503_on_a_database_that_is_not_migrated(tmp_path: Path) -> None:
    with _app_on(f"sqlite:///{tmp_path / 'empty.db'}") as c:
        r = c.get("/readyz")
        assert (r.status_code, r.json()["status"]) == (503, "migrations_pending")
        assert c.get("/livez").status_code == 200  # the process itself is fine


def test_readyz_is_503_when_the_database_is_unreachable(tmp_path: Path) -> None:
    with _app_on(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}") as c:
        r = c.get("/readyz")
        assert (r.status_code, r.json()["status"]) == (503, "database_unreachable")


def test_readyz_is_503_while_shutting_down(client: TestClient) -> None:
    client.app.state.shutting_down = True  # type: ignore[attr-defined]
    r = client.get("/readyz")
    assert (r.status_code, r.json()["status"]) == (503, "shutting_down")


# --------------------------------------------------------------------------- metrics


def test_metrics_are_labelled_by_route_template_never_by_raw_path(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker
) -> None:
    iid = post_incident(client, submitter, incident_body())
    absent = str(uuid.uuid4())
    triage = make_key("triage")
    assert client.get(f"/v1/incidents/{iid}", headers=triage).status_code == 200
    assert client.get(f"/v1/incidents/{absent}", headers=triage).status_code == 404
    assert client.get(f"/v1/no-such-route/{absent}").status_code == 404
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'route="/v1/incidents/{incident_id}"' in text
    assert 'route="/v1/incidents"' in text
    assert 'route="unmatched"' in text
    assert 'status="2xx"' in text
    assert 'status="4xx"' in text
    for raw in (iid, absent, "no-such-route"):
        assert raw not in text


# --------------------------------------------------------------------------- production


def test_production_serves_no_interactive_docs_or_schema(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    settings = Settings(environment="production", database_url=url, api_keys_configured=True)
    with TestClient(build_app(settings, Database(url), None), raise_server_exceptions=False) as c:
        for path in ("/docs", "/openapi.json", "/redoc"):
            r = c.get(path)
            assert r.status_code == 404, path
            assert r.headers["content-type"] == PROBLEM


def test_production_refuses_to_start_without_credentials_configured() -> None:
    with pytest.raises(ValueError, match="credentials"):
        Settings(environment="production", database_url="sqlite:///x.db")
