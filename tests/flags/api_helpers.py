"""Helpers for the flag, queue and sharing API tests (plain functions, importable anywhere).

All data is invented test data (see tests/data/README.md): the contract's example incident
with fresh references and changed times.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from fastapi.testclient import TestClient

from tests.conftest import example_incident

AREA_A = "E09000018"
AREA_B = "E09000019"


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def incident_at(
    reported_at: str,
    *,
    occurred_at: str | None = None,
    area: str = AREA_A,
    reference: str | None = None,
) -> dict[str, Any]:
    """The contract's example incident, reported at ``reported_at``, with a fresh reference.

    Person identifiers are dropped and family names made unique, so that incidents in one
    test never link into a shared history (which would change their levels).
    """
    body = example_incident()
    body["source"]["reference"] = reference or f"PPN-T-{uuid.uuid4().hex[:12]}"
    body["area"] = area
    body["reported_at"] = reported_at
    body["occurred_at"] = occurred_at or reported_at
    family = "Testperson" + uuid.uuid4().hex[:8]
    for person in body["persons"]:
        person.pop("identifiers", None)
        if "name" in person:
            person["name"]["family"] = family
    return body


def post_incident(client: TestClient, submitter: dict[str, str], body: dict[str, Any]) -> str:
    r = client.post("/v1/incidents", json=body, headers=submitter)
    assert r.status_code == 201, r.text
    return str(r.json()["incident_id"])


def revise(
    client: TestClient, submitter: dict[str, str], incident_id: str, body: dict[str, Any]
) -> dict[str, Any]:
    r = client.post(f"/v1/incidents/{incident_id}/revisions", json=body, headers=submitter)
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def list_flags(client: TestClient, headers: dict[str, str], **params: Any) -> list[dict[str, Any]]:
    """Every page of GET /v1/flags for ``params``."""
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 200, **params}
        if cursor:
            query["cursor"] = cursor
        r = client.get("/v1/flags", params=query, headers=headers)
        assert r.status_code == 200, r.text
        page = r.json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items


def flags_of(
    client: TestClient, headers: dict[str, str], incident_id: str, **params: Any
) -> list[dict[str, Any]]:
    return list_flags(client, headers, incident_id=incident_id, **params)


def one_flag(
    flags: list[dict[str, Any]], flag_type: str, subject_ref: str = "v1"
) -> dict[str, Any]:
    [flag] = [f for f in flags if f["type"] == flag_type and f["subject_ref"] == subject_ref]
    return flag


def patch_flag(
    client: TestClient,
    headers: dict[str, str],
    flag: dict[str, Any],
    body: dict[str, Any],
    *,
    etag: str | None = None,
) -> Any:
    """PATCH with If-Match (the given ETag, else the flag's); returns the response."""
    return client.patch(
        f"/v1/flags/{flag['id']}",
        json=body,
        headers={**headers, "If-Match": etag or flag["etag"]},
    )
