"""HTTP protocol details a careless client or a scanner meets: body limits without a length,
``Allow`` on 405, no ``server`` header, purposes as codes, the OpenAPI document saying what
is enforced, and every automatic link logged as a combination. Invented test data.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.chain import seal_all
from app.audit.models import AuditEvent
from app.auth import cli as keys_cli
from app.cli import OPENAPI_PATH
from app.ops import cli as ops_cli
from app.requests import parse_json
from tests.conftest import KeyMaker, example_incident

PROBLEM = "application/problem+json"


def test_a_chunked_body_over_the_limit_is_a_413_like_a_sized_one(
    client: TestClient, submitter: dict[str, str]
) -> None:
    def chunks() -> Iterator[bytes]:  # no Content-Length: sent chunked
        yield b'{"area": "'
        for _ in range(40):
            yield b"x" * 32_768
        yield b'"}'

    r = client.post(
        "/v1/incidents",
        content=chunks(),
        headers={**submitter, "Content-Type": "application/json"},
    )
    assert r.status_code == 413, r.text
    assert r.headers["content-type"] == PROBLEM
    assert r.json()["type"].endswith("/payload-too-large")


def test_a_405_names_every_method_of_the_path(client: TestClient, make_key: KeyMaker) -> None:
    admin = make_key("admin")
    r = client.delete("/v1/admin/keys", headers=admin)
    assert r.status_code == 405
    assert r.headers["content-type"] == PROBLEM
    assert r.headers["allow"] == "GET, POST"
    r = client.put("/v1/incidents", headers=admin)
    assert r.headers["allow"] == "GET, POST"  # search and intake


def test_triage_serve_sends_no_server_header(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr(ops_cli.uvicorn, "run", lambda *_a, **kw: seen.update(kw))
    ops_cli._serve(argparse.Namespace(host="127.0.0.1", port=8000))
    assert seen["server_header"] is False


@pytest.mark.parametrize("days", ["0", "-3", "3651", "soon"])
def test_a_key_never_expires_by_accident(days: str) -> None:
    parser = argparse.ArgumentParser()
    keys_cli.register(parser.add_subparsers())
    with pytest.raises(SystemExit):
        parser.parse_args(["keys", "create", "--role", "triage", "--expires-in-days", days])


def test_a_free_text_purpose_on_a_change_is_not_logged(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    headers = {**submitter, "X-Purpose": "entered by Zqx Secretwood"}
    r = client.post("/v1/incidents", json=example_incident(), headers=headers)
    assert r.status_code == 201, r.text
    seal_all(session)
    collect = session.scalars(select(AuditEvent).where(AuditEvent.operation == "collect")).one()
    assert collect.purpose is None


def test_a_purpose_code_with_a_case_reference_is_logged_as_sent(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker, session: Session
) -> None:
    incident_id = client.post("/v1/incidents", json=example_incident(), headers=submitter).json()[
        "incident_id"
    ]
    triage = {**make_key("triage"), "X-Purpose": "marac:MARAC-2026-0147"}
    assert client.get(f"/v1/incidents/{incident_id}", headers=triage).status_code == 200
    seal_all(session)
    consult = session.scalars(select(AuditEvent).where(AuditEvent.operation == "consult")).one()
    assert consult.purpose == "marac:MARAC-2026-0147"


def test_every_automatic_link_is_logged_as_a_combination_with_its_rule(
    client: TestClient, submitter: dict[str, str], session: Session
) -> None:
    first = example_incident()
    assert client.post("/v1/incidents", json=first, headers=submitter).status_code == 201
    again = example_incident()
    again["source"]["reference"] = "PPN-2026-LINKED"
    r = client.post("/v1/incidents", json=again, headers=submitter)
    assert r.status_code == 201, r.text
    seal_all(session)
    links = session.scalars(
        select(AuditEvent).where(AuditEvent.operation == "combine").order_by(AuditEvent.seq)
    ).all()
    rules = {e.detail["rule"] for e in links}
    # The victim and the perpetrator by PNC id; the child by name and date of birth.
    assert {"identifier:pnc", "name_dob"} <= rules
    assert all(e.detail["action"] == "link" for e in links)
    assert all(e.record_ids[0] == r.json()["incident_id"] for e in links)
    assert all(len(e.person_ids) == 1 for e in links)
    # Only rules and positions: no name, date of birth or identifier value.
    text = json.dumps([e.detail for e in links])
    for person in first["persons"]:
        for value in (person.get("name") or {}).values():
            assert value not in text
        for identifier in person.get("identifiers", []):
            assert identifier["value"] not in text


def test_the_openapi_document_says_what_is_enforced() -> None:
    doc = json.loads(OPENAPI_PATH.read_text("utf-8"))

    def parameter(path: str, method: str, name: str) -> dict[str, Any]:
        return next(p for p in doc["paths"][path][method]["parameters"] if p["name"] == name)

    purpose = parameter("/v1/incidents/{incident_id}", "get", "X-Purpose")
    assert purpose["required"] is True
    assert purpose["schema"]["type"] == "string"
    assert "anyOf" not in purpose["schema"]
    assert purpose["schema"]["pattern"].startswith("^(triage|")
    if_match = parameter("/v1/flags/{flag_id}", "patch", "If-Match")
    assert if_match["required"] is True
    assert "pattern" in if_match["schema"]
    key = parameter("/v1/incidents", "post", "Idempotency-Key")
    assert key["required"] is False
    assert "pattern" in key["schema"]
    status = doc["components"]["schemas"]["FlagChange"]["properties"]["status"]
    assert "anyOf" not in status  # null is refused, and not documented as allowed


def test_a_body_is_read_strictly_but_cheaply() -> None:
    text = json.dumps(example_incident()).encode()
    assert parse_json(text) == example_incident()
    # An escaped backslash before "b" or "f" is only a suspect: the walk clears it.
    assert parse_json(b'{"note": "C:\\\\build\\\\files"}') == {"note": "C:\\build\\files"}
    assert parse_json(b'{"note": "line\\nbreak\\ttab"}') == {"note": "line\nbreak\ttab"}
