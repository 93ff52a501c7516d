"""Building blocks shared by the authorisation, audit, admin and hardening tests.

Plain functions so that tests in other directories can import them: posting an incident,
and giving an agency visibility of one through a flag (intake raises flags by the rules;
tests that are about the *policy* pin the flags themselves with ``set_flags``).

Also ``client``/``module_app``, imported by these tests' conftests (or modules): the same
``client`` as tests/conftest.py, but on one application per module instead of one per
test (building the app loads every checklist and rules file; the suite stays fast). Each
test still gets its own rolled-back transaction.

All data is invented test data (see tests/data/README.md): no real person or incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.assessments.models import Assessment
from app.config import Settings
from app.contract.incident import stored_incident
from app.db import Database, get_database, utcnow
from app.flags.models import Flag
from app.flags.store import child_school_urns
from app.incidents.models import IncidentPerson
from app.incidents.repository import latest_submission
from app.main import create_app
from tests.conftest import example_incident

# Two local-authority areas (ONS codes used only as labels here).
AREA_A = "E09000018"
AREA_B = "E09000019"
SYSTEM_A = "force-a-records"
SYSTEM_B = "force-b-records"
PROBLEM = "application/problem+json"


def incident_body(
    *, system: str = SYSTEM_A, area: str = AREA_A, reference: str | None = None
) -> dict[str, Any]:
    """The contract's example incident, from ``system`` in ``area``, with a fresh reference."""
    body = example_incident()
    body["source"]["system"] = system
    body["source"]["reference"] = reference or f"PPN-T-{uuid.uuid4().hex[:12]}"
    body["area"] = area
    return body


def unlinked(body: dict[str, Any]) -> dict[str, Any]:
    """``body`` with a household of its own: no identifiers, and family names no other
    incident has, so its persons link to no one (and no ``combine`` event is logged)."""
    family = f"Household{uuid.uuid4().hex[:8]}"
    for person in body["persons"]:
        person.pop("identifiers", None)
        if person.get("name"):
            person["name"]["family"] = family
    return body


def post_incident(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> str:
    """Submit ``body``; returns the new incident's id."""
    r = client.post("/v1/incidents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    return str(r.json()["incident_id"])


def _assessment_for(session: Session, incident_id: uuid.UUID) -> Assessment:
    """The incident's latest assessment, or a minimal one when intake made none."""
    latest = session.scalar(
        select(Assessment)
        .where(Assessment.incident_id == incident_id)
        .order_by(Assessment.version.desc())
        .limit(1)
    )
    if latest is not None:
        return latest
    row = Assessment(
        incident_id=incident_id,
        version=1,
        trigger="intake",
        created_by="test",
        submission_revision=1,
        inputs=None,
        result=None,
        victim_level="high",
        risk_rank=3,
        marac_refer=True,
        victim_checklist_id="dash-ric",
        victim_checklist_version="1",
        victim_checklist_sha256="0" * 64,
        child_checklist_id="child-risk",
        child_checklist_version="1",
        child_checklist_sha256="0" * 64,
    )
    session.add(row)
    session.flush()
    return row


# Flags a test does not want are given this agency rather than deleted: no principal can
# hold it, and nothing that refers to a flag (its events, disclosures) has to go.
HIDDEN_AGENCY = "test-hidden"
TEST_FLAG_TYPE = "test_flag"


def clear_flags(session: Session, incident_id: str | uuid.UUID) -> None:
    """Hide whatever flags intake raised, so a test decides exactly who has one."""
    iid = uuid.UUID(str(incident_id))
    session.execute(update(Flag).where(Flag.incident_id == iid).values(agency=HIDDEN_AGENCY))
    session.flush()


def give_flag(
    session: Session,
    incident_id: str | uuid.UUID,
    *,
    agency: str,
    subject_ref: str = "c1",
    subject_kind: str | None = None,
    area: str = AREA_A,
    due_in: timedelta = timedelta(hours=10),
) -> Flag:
    """Insert an open flag for ``agency`` about ``subject_ref`` on the incident (about a
    person of the role the incident gives that ref, unless ``subject_kind`` says), with
    the subject child's school as intake stores it."""
    iid = uuid.UUID(str(incident_id))
    assessment = _assessment_for(session, iid)
    if subject_kind is None:
        role = session.scalar(
            select(IncidentPerson.role).where(
                IncidentPerson.incident_id == iid, IncidentPerson.ref == subject_ref
            )
        )
        subject_kind = role if role in ("victim", "perpetrator") else "child"
    # As intake stores it: the school of the subject child in the incident as stored.
    latest = latest_submission(session, iid)
    schools = child_school_urns(stored_incident(latest.body)) if latest and latest.body else {}
    now = utcnow()
    flag = Flag(
        incident_id=iid,
        assessment_id=assessment.id,
        area=area,
        type=TEST_FLAG_TYPE,
        agency=agency,
        subject_kind=subject_kind,
        subject_ref=subject_ref,
        school_urn=schools.get(subject_ref) if subject_kind == "child" else None,
        priority=1,
        due_at=now + due_in,
        status="open",
        rule_id="test-rule",
        rules_id="test-rules",
        rules_version="1",
        rules_sha256="0" * 64,
        reason="test flag",
        because=[],
        action="test action",
        dedupe_key=f"test:{agency}:{subject_ref}:{uuid.uuid4().hex}",
        created_at=now,
        updated_at=now,
    )
    session.add(flag)
    session.commit()  # releases the test's savepoint: visible to the app's sessions
    return flag


def set_flags(
    session: Session, incident_id: str | uuid.UUID, *flags: tuple[str, str], area: str = AREA_A
) -> dict[tuple[str, str], Flag]:
    """Exactly these ``(agency, subject_ref)`` flags on the incident, no others visible.

    Idempotent: test flags already there are kept (their ids stay stable), every other
    flag is hidden. Returns the flags by ``(agency, subject_ref)``."""
    iid = uuid.UUID(str(incident_id))
    wanted = set(flags)
    kept: dict[tuple[str, str], Flag] = {}
    for flag in session.scalars(select(Flag).where(Flag.incident_id == iid)):
        key = (flag.agency, flag.subject_ref)
        if key in wanted and key not in kept and flag.type == TEST_FLAG_TYPE:
            kept[key] = flag
        elif flag.agency != HIDDEN_AGENCY:
            flag.agency = HIDDEN_AGENCY
    session.flush()
    for agency, ref in sorted(wanted - set(kept)):
        kept[(agency, ref)] = give_flag(session, iid, agency=agency, subject_ref=ref, area=area)
    session.commit()
    return kept


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def module_app(migrated_database: Database) -> FastAPI:
    return create_app(
        Settings(environment="test", database_url=migrated_database.url), migrated_database
    )


@pytest.fixture
def client(
    module_app: FastAPI, migrated_database: Database, connection: Connection
) -> Iterator[TestClient]:
    """The app's sessions join this test's transaction through savepoints (as in
    tests/conftest.py ``build_app``)."""

    joined = Database.joined(migrated_database, connection)

    async def _test_database() -> Database:
        return joined

    module_app.dependency_overrides[get_database] = _test_database
    try:
        with TestClient(module_app, raise_server_exceptions=False) as c:
            yield c
    finally:
        module_app.dependency_overrides.pop(get_database, None)
