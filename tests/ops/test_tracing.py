"""OpenTelemetry tracing: off by default; when on, a server span per request named by its
route, SQL spans beneath it, the request id on the span, and nothing personal in any
attribute (the search's name and date of birth travel in the query string). Invented
data (tests/data/README.md)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

from app.config import Settings
from app.db import Database
from app.logging import add_trace_ids
from app.main import create_app
from tests.conftest import example_incident


@pytest.fixture
def traced(
    fresh_database: Database, make_key_fresh: Callable[..., dict[str, str]]
) -> Iterator[tuple[TestClient, InMemorySpanExporter, dict[str, dict[str, str]]]]:
    exporter = InMemorySpanExporter()
    settings = Settings(environment="test", database_url=fresh_database.url)
    app = create_app(settings, fresh_database, span_processor=SimpleSpanProcessor(exporter))
    keys = {
        "submitter": make_key_fresh(fresh_database, "submitter"),
        "triage": make_key_fresh(fresh_database, "triage"),
    }
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client, exporter, keys


def _servers(spans: tuple[ReadableSpan, ...]) -> list[ReadableSpan]:
    return [s for s in spans if s.kind == SpanKind.SERVER]


def test_requests_and_their_sql_are_traced_without_personal_data(
    traced: tuple[TestClient, InMemorySpanExporter, dict[str, dict[str, str]]],
) -> None:
    client, exporter, keys = traced
    body = example_incident()
    victim = next(p for p in body["persons"] if p["role"] == "victim")
    posted = client.post("/v1/incidents", json=body, headers=keys["submitter"])
    assert posted.status_code == 201, posted.text
    incident_id = posted.json()["incident_id"]
    params = {"name": f"{victim['name']['given']} {victim['name']['family']}"}
    params["date_of_birth"] = victim["date_of_birth"]
    found = client.get("/v1/persons", params=params, headers=keys["triage"])
    assert found.status_code == 200, found.text
    read = client.get(f"/v1/incidents/{incident_id}", headers=keys["triage"])
    assert read.status_code == 200
    assert client.get("/livez").status_code == 200
    spans = exporter.get_finished_spans()
    servers = _servers(spans)
    assert [s.name for s in servers] == [
        "POST /v1/incidents",
        "GET /v1/persons",
        "GET /v1/incidents/{incident_id}",
    ]  # and no span for the probe
    for server, reply in zip(servers, (posted, found, read), strict=True):
        assert server.attributes is not None
        assert server.attributes["triage.request_id"] == reply.headers["X-Request-Id"]
        children = [s for s in spans if s.parent and s.parent.span_id == server.context.span_id]
        assert children, server.name  # the SQL it ran
    sql = [s for s in spans if s.attributes and "db.statement" in s.attributes]
    assert sql
    personal = [victim["name"]["given"], victim["name"]["family"], victim["date_of_birth"]]
    for value in [*personal, incident_id, body["source"]["reference"]]:
        leaks = [
            (s.name, k)
            for s in spans
            for k, v in (s.attributes or {}).items()
            if value in str(v) or value in s.name
        ]
        assert leaks == [], value


def test_tracing_is_off_unless_configured(fresh_database: Database) -> None:
    app = create_app(Settings(environment="test", database_url=fresh_database.url), fresh_database)
    assert app.state.tracer_provider is None
    assert add_trace_ids(None, "info", {"event": "x"}) == {"event": "x"}  # no span: no ids
