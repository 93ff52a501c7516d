"""The migration that adds ``flags.school_urn`` fills it for the flags already stored.

Flags stored before the revision get the school their subject child attends from their
incident's latest stored body; flags of an erased incident (no body left) get none. Run on
a database of its own (real commits), taken back to the revision before and up again. On
both databases; the incidents are invented test data.
"""

from __future__ import annotations

import copy
import uuid
from typing import Any

from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.flags.models import Flag
from app.ops.migrations import alembic_config
from tests.conftest import build_app, example_incident

BEFORE_SCHOOL_URNS = "6965bd63c0c3"


def _incident(reference: str, urn: str) -> dict[str, Any]:
    body = example_incident()
    body["source"]["reference"] = reference
    c1 = next(p for p in body["persons"] if p["ref"] == "c1")
    c1["child"]["school"]["urn"] = urn
    return body


def _school_urns(database: Database, incident_id: str) -> dict[tuple[str, str], str | None]:
    with database.session() as s:
        flags = s.scalars(select(Flag).where(Flag.incident_id == uuid.UUID(incident_id)))
        return {(f.subject_kind, f.subject_ref): f.school_urn for f in flags}


def test_the_migration_fills_the_school_of_flags_already_stored(
    fresh_database: Database, make_key_fresh: Any
) -> None:
    settings = Settings(environment="test", database_url=fresh_database.url)
    database = Database(fresh_database.url)
    app = build_app(settings, database, None)
    submitter = make_key_fresh(fresh_database)
    admin = make_key_fresh(fresh_database, "admin")
    with TestClient(app) as client:
        first = client.post("/v1/incidents", json=_incident("MIG-1", "100123"), headers=submitter)
        revised = copy.deepcopy(_incident("MIG-1", "20045678"))  # the school corrected
        iid = first.json()["incident_id"]
        r = client.post(f"/v1/incidents/{iid}/revisions", json=revised, headers=submitter)
        assert r.status_code == 201, r.text
        gone = client.post("/v1/incidents", json=_incident("MIG-2", "100123"), headers=submitter)
        erased = gone.json()["incident_id"]
        r = client.post(
            f"/v1/incidents/{erased}/erase", json={"reason": "test: disposal"}, headers=admin
        )
        assert r.status_code == 200
    database.dispose()
    stored = _school_urns(fresh_database, iid)
    assert stored[("child", "c1")] == "20045678"

    config = alembic_config(fresh_database.url)
    fresh_database.dispose()
    command.downgrade(config, BEFORE_SCHOOL_URNS)
    command.upgrade(config, "head")

    # The same as intake and the revision stored: from the latest body.
    assert _school_urns(fresh_database, iid) == stored
    assert any(kind != "child" for kind, _ in stored)
    assert all(urn is None for (kind, _), urn in stored.items() if kind != "child")
    assert set(_school_urns(fresh_database, erased).values()) == {None}
