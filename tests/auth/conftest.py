"""The authorisation test world: one principal per column of the matrix, incidents in two areas.

Incident A comes from ``force-a-records`` in area A, incident B from ``force-b-records`` in
area B. The school in area A has a flag about child ``c1`` on incident A; children's social
care (CSC) in area B has one on incident B; CSC in area A has none anywhere; adult social
care in area A has one about the victim ``v1`` on incident A. The school key ``school_a`` is
for the school c1 attends; ``other_school_a`` for another school in area A, whose pupils
are in no incident. All invented.
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessments.models import Assessment
from app.auth.keys import create_key
from app.incidents.models import IncidentPerson
from tests.auth import scenario
from tests.auth.scenario import (
    AREA_A,
    AREA_B,
    SYSTEM_A,
    SYSTEM_B,
    incident_body,
    post_incident,
    set_flags,
)
from tests.conftest import KeyMaker

PURPOSE = {"X-Purpose": "audit"}
SCHOOL_C1 = "100123"  # the school child c1 attends in both incidents (invented URN)
OTHER_SCHOOL = "100999"  # a school no child of the world attends (invented URN)

# One application per module instead of one per test (see tests/auth/scenario.py).
client = scenario.client
module_app = scenario.module_app


@dataclass(frozen=True)
class World:
    headers: dict[str, dict[str, str]]  # principal name → request headers
    incident_a: str
    incident_b: str
    assessment_a: str  # incident A's latest assessment
    body_a: dict[str, Any]  # incident A as submitted
    flag_a: str  # the school's flag about child c1 on incident A
    flag_b: str  # CSC's flag about child c1 on incident B
    flag_asc: str  # adult social care's flag about the victim v1 on incident A
    spare_key: str  # an active key that only an admin may revoke
    unknown: str  # an id that names no record
    person_a: str  # incident A's victim (in area A's incidents only)
    person_c: str  # incident A's child c1 (in area A's incidents only)
    checklist_id: str = "dash-ric"  # a published checklist definition
    checklist_version: str = "1"
    area_a: str = AREA_A  # the area reports' areas
    area_b: str = AREA_B

    def revision_of_a(self) -> dict[str, Any]:
        """Incident A with one answer changed: a genuine revision."""
        body = copy.deepcopy(self.body_a)
        body["victim_checklist"]["answers"]["isolated"] = "yes"
        return body


# The matrix's columns, in the order requests are made (admin last: its writes succeed).
PRINCIPALS = (
    "none",
    "submitter_a",
    "submitter_b",
    "triage_a",
    "triage_b",
    "school_a",
    "other_school_a",
    "csc_b",
    "csc_a",
    "adult_social_care_a",
    "auditor",
    "partnership_a",
    "admin",
)


# Incident A's flags: the school's about the child, adult social care's about the victim.
FLAGS_A = (("school", "c1"), ("adult_social_care", "v1"))


@pytest.fixture
def world(client: TestClient, make_key: KeyMaker, session: Session) -> World:
    headers = {
        "none": dict(PURPOSE),
        "submitter_a": make_key("submitter", source_system=SYSTEM_A),
        "submitter_b": make_key("submitter", source_system=SYSTEM_B),
        "triage_a": make_key("triage", areas=[AREA_A]),
        "triage_b": make_key("triage", areas=[AREA_B]),
        # The school of incident A's child c1 (the contract's example), and another one.
        "school_a": make_key("agency", agency="school", areas=[AREA_A], schools=[SCHOOL_C1]),
        "other_school_a": make_key(
            "agency", agency="school", areas=[AREA_A], schools=[OTHER_SCHOOL]
        ),
        "csc_b": make_key("agency", agency="csc", areas=[AREA_B]),
        "csc_a": make_key("agency", agency="csc", areas=[AREA_A]),
        "adult_social_care_a": make_key("agency", agency="adult_social_care", areas=[AREA_A]),
        "auditor": make_key("auditor"),
        "partnership_a": make_key("partnership", areas=[AREA_A]),
        "admin": make_key("admin"),
    }
    body_a = incident_body(system=SYSTEM_A, area=AREA_A)
    incident_a = post_incident(client, headers["submitter_a"], body_a)
    incident_b = post_incident(client, headers["submitter_b"], other_family(AREA_B))
    spare = create_key(session, role="auditor", label="spare")
    session.commit()
    assessment_a = session.scalar(
        select(Assessment.id)
        .where(Assessment.incident_id == uuid.UUID(incident_a))
        .order_by(Assessment.version.desc())
        .limit(1)
    )
    flags_a = set_flags(session, incident_a, *FLAGS_A, area=AREA_A)
    flag_b = set_flags(session, incident_b, ("csc", "c1"), area=AREA_B)[("csc", "c1")]
    refs = {
        ip.ref: str(ip.person_id)
        for ip in session.scalars(
            select(IncidentPerson).where(IncidentPerson.incident_id == uuid.UUID(incident_a))
        )
    }
    world = World(
        headers=headers,
        incident_a=incident_a,
        incident_b=incident_b,
        assessment_a=str(assessment_a),
        body_a=body_a,
        flag_a=str(flags_a[("school", "c1")].id),
        flag_b=str(flag_b.id),
        flag_asc=str(flags_a[("adult_social_care", "v1")].id),
        spare_key=str(spare.id),
        unknown=str(uuid.uuid4()),
        person_a=refs["v1"],
        person_c=refs["c1"],
    )
    return world


def other_family(area: str) -> dict[str, Any]:
    """Incident B: a different (invented) family, so no person links across the areas."""
    body = incident_body(system=SYSTEM_B, area=area)
    for n, person in enumerate(body["persons"]):
        person["identifiers"] = []
        if person.get("name"):
            person["name"]["family"] = f"Otherfamily{n}"
        if person.get("date_of_birth"):
            person["date_of_birth"] = f"19{80 + n}-01-0{n + 1}"
    return body


def pin_flags(session: Session, world: World) -> None:
    """Exactly the matrix's flags (``flag_a``, ``flag_b``, ids unchanged), whatever intake or
    a later assessment raised."""
    set_flags(session, world.incident_a, *FLAGS_A, area=AREA_A)
    set_flags(session, world.incident_b, ("csc", "c1"), area=AREA_B)
