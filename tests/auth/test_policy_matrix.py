"""The authorisation matrix, cell by cell: every principal against every /v1 endpoint.

``CASES`` is the table: one row per endpoint (with an example request), one expected
outcome per principal: ``OK`` (any 2xx), 401 (no credential), 403 (the role may not call
this at all: OWASP API5) or 404 (the role may, but this record is outside the principal's
scope: OWASP API1; never 403, so nothing reveals that the record exists). When an endpoint
is added to openapi/openapi.json, add a row here: ``test_the_table_covers_every_v1_operation``
fails until then, and ``test_the_table_agrees_with_the_policy_matrix`` checks the row
against ``app.auth.policy.MATRIX``.

All data is invented test data.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.audit.chain import seal_all
from app.audit.models import AuditEvent
from app.auth.policy import MATRIX
from app.cli import OPENAPI_PATH
from app.incidents import models
from app.scoring.registry import load_registry
from tests.auth.conftest import PRINCIPALS, World, pin_flags
from tests.auth.scenario import AREA_A, AREA_B, PROBLEM, SYSTEM_A, give_flag, incident_body
from tests.conftest import KeyMaker

OK = "2xx"


def draft_checklist() -> dict[str, Any]:
    """The shipped victim checklist as a draft version, its high band one point higher."""
    document = load_registry().get_ref("dash-ric@2").document()
    document["version"] = "draft"
    document["thresholds"]["high_from"] += 1
    return document


Expect = int | str

# The agency behind each agency column (what its disclosures name).
AGENCY_OF = {
    "school_a": "school",
    "other_school_a": "school",
    "csc_b": "csc",
    "csc_a": "csc",
    "adult_social_care_a": "adult_social_care",
}

# The role behind each column (``none`` has no credential at all).
ROLE_OF = {
    "submitter_a": "submitter",
    "submitter_b": "submitter",
    "triage_a": "triage",
    "triage_b": "triage",
    "school_a": "agency",
    "other_school_a": "agency",
    "csc_b": "agency",
    "csc_a": "agency",
    "adult_social_care_a": "agency",
    "auditor": "auditor",
    "partnership_a": "partnership",
    "admin": "admin",
}


def cells(default: Expect = 403, **overrides: Expect) -> dict[str, Expect]:
    """Every column: 401 without a credential, ``default`` unless overridden."""
    out: dict[str, Expect] = dict.fromkeys(PRINCIPALS, default)
    out["none"] = 401
    out.update(overrides)
    return out


@dataclass(frozen=True)
class Case:
    name: str
    action: str  # the key in app.auth.policy.MATRIX
    method: str
    route: str  # the path template exactly as in openapi/openapi.json
    expect: dict[str, Expect]
    # What a 2xx writes to the statutory log, in this request's transaction.
    logs: frozenset[str] = frozenset()
    params: Mapping[str, str] = field(default_factory=dict)  # path param → World attribute
    body: Callable[[World, str], Any] | None = None  # (world, principal) → JSON body
    query: Callable[[World], Mapping[str, str]] | None = None  # world → query parameters

    def path(self, world: World) -> str:
        path = self.route.format(**{k: getattr(world, v) for k, v in self.params.items()})
        return path if self.query is None else f"{path}?{urlencode(self.query(world))}"


CASES: tuple[Case, ...] = (
    Case(
        "create incident from force A",
        "incident.create",
        "POST",
        "/v1/incidents",
        # A submitter creates only for its own source system.
        cells(submitter_a=OK, submitter_b=403),
        # The world's persons are known already: linking them is a combination.
        logs=frozenset({"collect", "combine"}),
        body=lambda _w, _p: incident_body(system=SYSTEM_A, area=AREA_A),
    ),
    Case(
        "read incident in area A",
        "incident.read",
        "GET",
        "/v1/incidents/{incident_id}",
        cells(
            submitter_a=OK,
            submitter_b=404,
            triage_a=OK,
            triage_b=404,
            school_a=OK,  # flagged for the school (about its pupil), in its area
            other_school_a=404,  # a school flag, but about no pupil of this school
            csc_b=404,  # other area
            csc_a=404,  # its area, but no flag for CSC
            adult_social_care_a=OK,  # flagged about the victim
            auditor=OK,
        ),
        logs=frozenset({"consult"}),
        params={"incident_id": "incident_a"},
    ),
    Case(
        "read incident in area B",
        "incident.read",
        "GET",
        "/v1/incidents/{incident_id}",
        cells(
            submitter_a=404,
            submitter_b=OK,
            triage_a=404,
            triage_b=OK,
            school_a=404,
            other_school_a=404,
            csc_b=OK,
            csc_a=404,
            adult_social_care_a=404,
            auditor=OK,
        ),
        logs=frozenset({"consult"}),
        params={"incident_id": "incident_b"},
    ),
    Case(
        "read incident that does not exist",
        "incident.read",
        "GET",
        "/v1/incidents/{incident_id}",
        cells(
            submitter_a=404,
            submitter_b=404,
            triage_a=404,
            triage_b=404,
            school_a=404,
            other_school_a=404,
            csc_b=404,
            csc_a=404,
            adult_social_care_a=404,
            auditor=404,
        ),
        params={"incident_id": "unknown"},
    ),
    Case(
        "search incidents by incident A's source reference",
        "incident.search",
        "GET",
        "/v1/incidents",
        # Scope filters the results (area B's triage finds nothing); it never refuses.
        cells(triage_a=OK, triage_b=OK, auditor=OK),
        logs=frozenset({"consult"}),
        query=lambda w: {"source_reference": w.body_a["source"]["reference"]},
    ),
    Case(
        "revise incident in area A",
        "incident.revise",
        "POST",
        "/v1/incidents/{incident_id}/revisions",
        # Only the submitting system revises; other systems' submitters do not see it.
        cells(submitter_a=OK, submitter_b=404),
        logs=frozenset({"alter"}),
        params={"incident_id": "incident_a"},
        body=lambda w, _p: w.revision_of_a(),
    ),
    Case(
        "record judgement on incident in area A",
        "judgement.create",
        "POST",
        "/v1/incidents/{incident_id}/judgements",
        cells(triage_a=OK, triage_b=404),
        logs=frozenset({"alter"}),
        params={"incident_id": "incident_a"},
        body=lambda _w, _p: {"level": "high", "rationale": "test: repeat victimisation pattern"},
    ),
    Case(
        "list assessments of incident in area A",
        "assessment.read",
        "GET",
        "/v1/incidents/{incident_id}/assessments",
        cells(submitter_a=OK, submitter_b=404, triage_a=OK, triage_b=404, auditor=OK),
        logs=frozenset({"consult"}),
        params={"incident_id": "incident_a"},
    ),
    Case(
        "read assessment of incident in area A",
        "assessment.read",
        "GET",
        "/v1/assessments/{assessment_id}",
        cells(submitter_a=OK, submitter_b=404, triage_a=OK, triage_b=404, auditor=OK),
        logs=frozenset({"consult"}),
        params={"assessment_id": "assessment_a"},
    ),
    Case(
        "read assessment that does not exist",
        "assessment.read",
        "GET",
        "/v1/assessments/{assessment_id}",
        cells(submitter_a=404, submitter_b=404, triage_a=404, triage_b=404, auditor=404),
        params={"assessment_id": "unknown"},
    ),
    Case(
        "explain assessment of incident in area A",
        "assessment.explain",
        "GET",
        "/v1/assessments/{assessment_id}/explanation",
        cells(triage_a=OK, triage_b=404, auditor=OK),
        logs=frozenset({"consult"}),
        params={"assessment_id": "assessment_a"},
    ),
    Case(
        "reproduce assessment of incident in area A",
        "assessment.reproduce",
        "POST",
        "/v1/assessments/{assessment_id}/reproduce",
        cells(triage_a=OK, triage_b=404, auditor=OK),
        logs=frozenset({"consult"}),
        params={"assessment_id": "assessment_a"},
    ),
    Case(
        "list checklists",
        "checklist.read",
        "GET",
        "/v1/checklists",
        cells(OK, partnership_a=403),
    ),
    Case(
        "read a checklist version",
        "checklist.read",
        "GET",
        "/v1/checklists/{checklist_id}/versions/{version}",
        cells(OK, partnership_a=403),
        params={"checklist_id": "checklist_id", "version": "checklist_version"},
    ),
    Case(
        "list audit events",
        "audit.read",
        "GET",
        "/v1/audit/events",
        cells(auditor=OK),
        logs=frozenset({"consult"}),
    ),
    Case(
        "export audit events",
        "audit.read",
        "GET",
        "/v1/audit/export",
        cells(auditor=OK),
        logs=frozenset({"consult"}),
    ),
    Case(
        "verify audit chain",
        "audit.read",
        "GET",
        "/v1/audit/verify",
        cells(auditor=OK),
        logs=frozenset({"consult"}),
    ),
    Case(
        "list flags",
        "flag.read",
        "GET",
        "/v1/flags",
        # Scope filters the rows (possibly to none); it never refuses the listing.
        cells(
            triage_a=OK,
            triage_b=OK,
            school_a=OK,
            other_school_a=OK,
            csc_b=OK,
            csc_a=OK,
            adult_social_care_a=OK,
            auditor=OK,
        ),
        logs=frozenset({"consult"}),
    ),
    Case(
        "read the school's flag on incident A",
        "flag.read",
        "GET",
        "/v1/flags/{flag_id}",
        cells(
            triage_a=OK,
            triage_b=404,
            school_a=OK,
            other_school_a=404,
            csc_b=404,
            csc_a=404,
            auditor=OK,
            adult_social_care_a=404,
        ),
        logs=frozenset({"consult"}),
        params={"flag_id": "flag_a"},
    ),
    Case(
        "read the history of the school's flag on incident A",
        "flag.read",
        "GET",
        "/v1/flags/{flag_id}/history",
        cells(
            triage_a=OK,
            triage_b=404,
            school_a=OK,
            other_school_a=404,
            csc_b=404,
            csc_a=404,
            auditor=OK,
            adult_social_care_a=404,
        ),
        logs=frozenset({"consult"}),
        params={"flag_id": "flag_a"},
    ),
    Case(
        "read adult social care's flag about the victim on incident A",
        "flag.read",
        "GET",
        "/v1/flags/{flag_id}",
        cells(
            triage_a=OK,
            triage_b=404,
            school_a=404,
            other_school_a=404,
            csc_b=404,
            csc_a=404,
            adult_social_care_a=OK,
            auditor=OK,
        ),
        logs=frozenset({"consult"}),
        params={"flag_id": "flag_asc"},
    ),
    Case(
        "change the school's flag on incident A without If-Match",
        "flag.work",
        "PATCH",
        "/v1/flags/{flag_id}",
        # In scope, the missing precondition is the answer (428) and nothing is written.
        cells(
            triage_a=428,
            triage_b=404,
            school_a=428,
            other_school_a=404,
            csc_b=404,
            csc_a=404,
            adult_social_care_a=404,
        ),
        params={"flag_id": "flag_a"},
        body=lambda _w, _p: {"status": "acknowledged"},
    ),
    Case(
        "add a note to the school's flag on incident A",
        "flag.work",
        "POST",
        "/v1/flags/{flag_id}/notes",
        cells(
            triage_a=OK,
            triage_b=404,
            school_a=OK,
            other_school_a=404,
            csc_b=404,
            csc_a=404,
            adult_social_care_a=404,
        ),
        logs=frozenset({"alter"}),
        params={"flag_id": "flag_a"},
        body=lambda _w, p: {"text": f"test: note by {p}"},
    ),
    Case(
        "read the triage queue",
        "queue.read",
        "GET",
        "/v1/queue",
        cells(triage_a=OK, triage_b=OK, auditor=OK),
        logs=frozenset({"consult"}),
    ),
    Case(
        "record a disclosure about incident A",
        "disclosure.create",
        "POST",
        "/v1/incidents/{incident_id}/disclosures",
        cells(triage_a=OK, triage_b=404),
        logs=frozenset({"disclose"}),
        params={"incident_id": "incident_a"},
        body=lambda _w, _p: {
            "decision": "shared",
            "recipient_agency": "csc",
            "lawful_basis": "safeguarding",
            "purpose": "test: referral to children's social care",
            "categories_shared": ["incident_summary", "child_details"],
            "subject_refs": ["c1"],
            "consent_status": "not_sought_risk",
        },
    ),
    Case(
        "list disclosures about incident A",
        "disclosure.read",
        "GET",
        "/v1/incidents/{incident_id}/disclosures",
        cells(triage_a=OK, triage_b=404, auditor=OK),
        logs=frozenset({"consult"}),
        params={"incident_id": "incident_a"},
    ),
    Case(
        "list reviews due",
        "admin.reviews",
        "GET",
        "/v1/admin/reviews-due",
        cells(admin=OK),
    ),
    Case(
        "list API keys",
        "admin.keys",
        "GET",
        "/v1/admin/keys",
        cells(admin=OK),
    ),
    Case(
        "create API key",
        "admin.keys",
        "POST",
        "/v1/admin/keys",
        cells(admin=OK),
        logs=frozenset({"collect"}),
        body=lambda _w, p: {"role": "auditor", "label": f"made by {p}"},
    ),
    Case(
        "revoke API key",
        "admin.keys",
        "DELETE",
        "/v1/admin/keys/{key_id}",
        cells(admin=OK),
        logs=frozenset({"alter"}),
        params={"key_id": "spare_key"},
    ),
    Case(
        "list notification subscriptions",
        "admin.subscriptions",
        "GET",
        "/v1/admin/subscriptions",
        cells(admin=OK),
    ),
    Case(
        "create a notification subscription",
        "admin.subscriptions",
        "POST",
        "/v1/admin/subscriptions",
        cells(admin=OK),
        logs=frozenset({"collect"}),
        body=lambda _w, p: {"agency": "csc", "url": "https://csc.example/hook", "label": p},
    ),
    Case(
        "delete a subscription that does not exist",
        "admin.subscriptions",
        "DELETE",
        "/v1/admin/subscriptions/{subscription_id}",
        cells(admin=404),
        params={"subscription_id": "unknown"},
    ),
    Case(
        "list the failed notifications (dead letters)",
        "admin.subscriptions",
        "GET",
        "/v1/admin/notifications",
        cells(admin=OK),
    ),
    Case(
        "requeue every failed notification",
        "admin.subscriptions",
        "POST",
        "/v1/admin/notifications/retry",
        cells(admin=OK),
        logs=frozenset({"alter"}),
        body=lambda _w, _p: {},
    ),
    Case(
        "requeue a notification that does not exist",
        "admin.subscriptions",
        "POST",
        "/v1/admin/notifications/{notification_id}/retry",
        cells(admin=404),
        params={"notification_id": "unknown"},
    ),
    Case(
        "acknowledge a notification that does not exist",
        "notification.ack",
        "POST",
        "/v1/notifications/{notification_id}/ack",
        cells(**dict.fromkeys(AGENCY_OF, 404)),
        params={"notification_id": "unknown"},
    ),
    Case(
        "what-if of a draft checklist over area A",
        "report.what_if",
        "POST",
        "/v1/reports/what-if",
        cells(auditor=OK),
        logs=frozenset({"consult"}),
        body=lambda _w, _p: {"area": AREA_A, "definition": draft_checklist()},
    ),
    Case(
        "read person in area A",
        "person.read",
        "GET",
        "/v1/persons/{person_id}",
        cells(triage_a=OK, triage_b=404, auditor=OK),
        logs=frozenset({"consult"}),
        params={"person_id": "person_a"},
    ),
    Case(
        "read timeline of person in area A",
        "person.read",
        "GET",
        "/v1/persons/{person_id}/timeline",
        cells(triage_a=OK, triage_b=404, auditor=OK),
        logs=frozenset({"consult"}),
        params={"person_id": "person_a"},
    ),
    Case(
        "search persons by the name and date of birth of incident A's victim",
        "person.search",
        "GET",
        "/v1/persons",
        cells(triage_a=OK, triage_b=OK, auditor=OK),
        logs=frozenset({"consult"}),
        query=lambda w: {
            "name": "{given} {family}".format(**w.body_a["persons"][0]["name"]),
            "date_of_birth": w.body_a["persons"][0]["date_of_birth"],
        },
    ),
    Case(
        "merge two persons of area A",
        "person.merge",
        "POST",
        "/v1/persons/{person_id}/merge",
        cells(triage_a=OK, triage_b=404),
        logs=frozenset({"combine"}),
        params={"person_id": "person_c"},
        body=lambda w, _p: {"into": w.person_a, "reason": "test: records of one person"},
    ),
    Case(
        "unmerge them again",
        "person.merge",
        "POST",
        "/v1/persons/{person_id}/unmerge",
        cells(triage_a=OK, triage_b=404),
        logs=frozenset({"combine"}),
        params={"person_id": "person_c"},
        body=lambda _w, _p: {"reason": "test: the merge was wrong"},
    ),
    # A partnership reads only its own areas: another is a 404, as if it had none.
    *(
        Case(
            f"area report of area {name}",
            "report.read",
            "GET",
            "/v1/reports/areas/{area}",
            cells(auditor=OK, partnership_a=partnership),
            logs=frozenset({"consult"}),
            params={"area": f"area_{name.lower()}"},
            query=lambda _w: {"from": "2026-01-01", "to": "2027-01-01"},
        )
        for name, partnership in (("A", OK), ("B", 404))
    ),
    # Last: after this row incident A is a tombstone.
    Case(
        "erase incident that does not exist",
        "admin.erase",
        "POST",
        "/v1/incidents/{incident_id}/erase",
        cells(admin=404),
        params={"incident_id": "unknown"},
        body=lambda _w, _p: {"reason": "test: retention review decided to dispose"},
    ),
    Case(
        "erase incident in area A",
        "admin.erase",
        "POST",
        "/v1/incidents/{incident_id}/erase",
        cells(admin=OK),
        logs=frozenset({"erase"}),
        params={"incident_id": "incident_a"},
        body=lambda _w, _p: {"reason": "test: retention review decided to dispose"},
    ),
)


def _matches(expected: Expect, status: int) -> bool:
    return 200 <= status < 300 if expected == OK else status == expected


def _logged(session: Session, request_id: str) -> list[AuditEvent]:
    seal_all(session)  # reads' events wait to be chained on PostgreSQL
    return list(
        session.scalars(
            select(AuditEvent).where(AuditEvent.request_id == request_id).order_by(AuditEvent.seq)
        )
    )


def _log_problems(
    case: Case, world: World, principal: str, session: Session, request_id: str
) -> list[str]:
    """What is wrong with the audit events a successful request wrote, if anything."""
    logged = _logged(session, request_id)
    operations = {e.operation for e in logged}
    expected = set(case.logs)
    if expected and ROLE_OF[principal] == "agency":
        expected.add("disclose")  # every response to an agency is a disclosure
    problems = []
    if operations != expected:
        problems.append(f"logged {sorted(operations)}, expected {sorted(expected)}")
    purpose = world.headers[principal].get("X-Purpose")
    for e in logged:
        if e.operation in ("consult", "disclose") and e.purpose != purpose:
            problems.append(f"{e.operation} logged with purpose {e.purpose!r}")
        # An agency's reads disclose to it; the disclosure triage records here is to CSC.
        recipient = AGENCY_OF.get(principal, "csc")
        if e.operation == "disclose" and e.recipients != [f"agency:{recipient}"]:
            problems.append(f"disclose logged with recipients {e.recipients}")
    return problems


def _run_row(case: Case, client: TestClient, world: World, session: Session) -> list[str]:
    path = case.path(world)
    wrong = []
    for principal in PRINCIPALS:
        body = case.body(world, principal) if case.body is not None else None
        r = client.request(case.method, path, headers=world.headers[principal], json=body)
        expected = case.expect[principal]
        request_id = r.headers["x-request-id"]
        if not _matches(expected, r.status_code):
            wrong.append(f"{principal}: expected {expected}, got {r.status_code} {r.text[:160]}")
        elif r.is_success:
            wrong += [
                f"{principal}: {p}"
                for p in _log_problems(case, world, principal, session, request_id)
            ]
        elif _logged(session, request_id):
            wrong.append(f"{principal}: a refused request wrote audit events")
        if r.status_code >= 400 and r.headers["content-type"] != PROBLEM:
            wrong.append(f"{principal}: {r.status_code} is not a problem document")
        if r.status_code == 401 and not r.headers.get("www-authenticate", "").startswith("Bearer"):
            wrong.append(f"{principal}: 401 without WWW-Authenticate: Bearer")
    return [f"{case.method} {case.route} ({case.name}) as {w}" for w in wrong]


def test_every_principal_gets_its_matrix_cell_and_every_success_is_logged(
    client: TestClient, world: World, session: Session
) -> None:
    """Every row of the table, in order, on one world (one test keeps the suite fast; the
    failure lists every wrong cell of every row)."""
    wrong: list[str] = []
    for case in CASES:
        wrong += _run_row(case, client, world, session)
        pin_flags(session, world)  # a judgement or revision may have raised new flags
    assert not wrong, "\n".join(wrong)


def test_the_table_covers_every_v1_operation_in_the_openapi_document() -> None:
    document = json.loads(OPENAPI_PATH.read_text("utf-8"))
    documented = {
        (method.upper(), path)
        for path, item in document["paths"].items()
        if path.startswith("/v1/")
        for method in item
    }
    covered = {(c.method, c.route) for c in CASES}
    missing = sorted(documented - covered)
    assert not missing, f"add rows to CASES in {__file__} for: {missing}"
    assert covered <= documented, f"rows for undocumented routes: {sorted(covered - documented)}"


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_the_table_agrees_with_the_policy_matrix(case: Case) -> None:
    # A role is admitted to an action when at least one of its principals gets past the
    # role check (2xx or 404); 403 everywhere means the role is refused outright.
    admitted = {ROLE_OF[p] for p, e in case.expect.items() if p != "none" and e not in (401, 403)}
    assert admitted == set(MATRIX[case.action]), case.name
    assert set(case.expect) == set(PRINCIPALS)


# --------------------------------------------------------------------------- object level


def test_no_answer_reveals_whether_an_incident_exists(client: TestClient, world: World) -> None:
    # Out of scope: the same 404 as an id that names nothing.
    headers = world.headers["triage_b"]
    hidden = client.get(f"/v1/incidents/{world.incident_a}", headers=headers)
    absent = client.get(f"/v1/incidents/{world.unknown}", headers=headers)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == absent.json()
    assert world.incident_a not in hidden.text
    # Wrong role: the same 403 whether or not the record exists.
    headers = world.headers["admin"]
    existing = client.get(f"/v1/incidents/{world.incident_a}", headers=headers)
    absent = client.get(f"/v1/incidents/{world.unknown}", headers=headers)
    assert existing.status_code == absent.status_code == 403
    assert existing.json() == absent.json()


def test_triage_and_auditor_see_the_whole_incident(client: TestClient, world: World) -> None:
    for who in ("triage_a", "auditor"):
        r = client.get(f"/v1/incidents/{world.incident_a}", headers=world.headers[who])
        assert r.status_code == 200
        stored = r.json()["incident"]
        assert {"victim_checklist", "perpetrator_history", "officer_assessment"} <= set(stored)
        assert len(r.json()["persons"]) == 4


def test_school_sees_only_the_flagged_child_and_the_incident_time(
    client: TestClient, world: World
) -> None:
    r = client.get(f"/v1/incidents/{world.incident_a}", headers=world.headers["school_a"])
    assert r.status_code == 200
    out = r.json()
    stored = out["incident"]
    assert set(stored) == {"persons", "occurred_at", "area"}
    assert [p["ref"] for p in stored["persons"]] == ["c1"]
    assert [p["ref"] for p in out["persons"]] == ["c1"]
    child = stored["persons"][0]
    assert "account" not in child["child"]
    assert "ethnicity" not in child
    for absent in ("victim_checklist", "perpetrator_history", "victim_history", "Amira", "Crewe"):
        assert absent not in r.text
    assert "pull his stepdad away" not in r.text  # the child's own account


def test_csc_sees_the_household_but_not_the_victim_checklist_or_perpetrator_history(
    client: TestClient, world: World
) -> None:
    r = client.get(f"/v1/incidents/{world.incident_b}", headers=world.headers["csc_b"])
    assert r.status_code == 200
    stored = r.json()["incident"]
    assert {p["ref"] for p in stored["persons"]} == {"v1", "p1", "c1", "c2"}
    assert "victim_checklist" not in stored
    assert "perpetrator_history" not in stored
    assert "officer_assessment" not in stored
    # CSC works with the child's own account.
    child = next(p for p in stored["persons"] if p["ref"] == "c1")
    assert "account" in child["child"]


ADULT_SAFEGUARDING_SECTIONS = {
    "persons",
    "occurred_at",
    "area",
    "relationship",
    "circumstances",
    "victim_checklist",
    "victim_history",
    "safety_plan",
    "consent",
}


def test_adult_social_care_sees_the_victim_only_and_nothing_of_the_children(
    client: TestClient, world: World
) -> None:
    r = client.get(
        f"/v1/incidents/{world.incident_a}", headers=world.headers["adult_social_care_a"]
    )
    assert r.status_code == 200
    out = r.json()
    stored = out["incident"]
    assert set(stored) == ADULT_SAFEGUARDING_SECTIONS
    assert [p["ref"] for p in stored["persons"]] == ["v1"]
    assert [p["ref"] for p in out["persons"]] == ["v1"]
    assert "ethnicity" not in stored["persons"][0]
    assert [(f["agency"], f["subject_ref"]) for f in out["flags"]] == [("adult_social_care", "v1")]
    # Nothing of the children (names, school, the child's own account) or the perpetrator's
    # record; the victim's checklist is there.
    for absent in ("Leo", "Riverside", "pull his stepdad away", "Crewe", "perpetrator_history"):
        assert absent not in r.text
    assert "very_frightened" in r.text


def test_adult_social_care_never_sees_a_child_even_when_a_flag_is_about_one(
    client: TestClient, world: World, session: Session
) -> None:
    give_flag(session, world.incident_a, agency="adult_social_care", subject_ref="c1")
    r = client.get(
        f"/v1/incidents/{world.incident_a}", headers=world.headers["adult_social_care_a"]
    )
    assert r.status_code == 200
    assert [p["ref"] for p in r.json()["incident"]["persons"]] == ["v1"]
    assert [p["ref"] for p in r.json()["persons"]] == ["v1"]
    assert "pull his stepdad away" not in r.text
    # After erasure too: no child among the persons it is told about.
    erased = client.post(
        f"/v1/incidents/{world.incident_a}/erase",
        json={"reason": "test: disposal"},
        headers=world.headers["admin"],
    )
    assert erased.status_code == 200
    after = client.get(
        f"/v1/incidents/{world.incident_a}", headers=world.headers["adult_social_care_a"]
    )
    assert after.status_code == 200
    assert [p["ref"] for p in after.json()["persons"]] == ["v1"]


def test_adult_social_care_lists_only_its_own_flags(client: TestClient, world: World) -> None:
    r = client.get("/v1/flags", headers=world.headers["adult_social_care_a"])
    assert r.status_code == 200
    assert [f["id"] for f in r.json()["items"]] == [world.flag_asc]


def test_an_agency_sees_no_more_persons_of_an_erased_incident_than_before(
    client: TestClient, world: World
) -> None:
    url = f"/v1/incidents/{world.incident_a}"
    before = client.get(url, headers=world.headers["school_a"]).json()["persons"]
    erased = client.post(
        f"{url}/erase", json={"reason": "test: disposal"}, headers=world.headers["admin"]
    )
    assert erased.status_code == 200
    after = client.get(url, headers=world.headers["school_a"])
    assert after.status_code in (200, 404, 410)
    if after.status_code == 200:
        assert {p["ref"] for p in after.json()["persons"]} <= {p["ref"] for p in before}


def test_agency_without_a_flag_on_an_incident_in_its_area_gets_404_until_flagged(
    client: TestClient, world: World, session: Session
) -> None:
    url = f"/v1/incidents/{world.incident_a}"
    assert client.get(url, headers=world.headers["csc_a"]).status_code == 404
    give_flag(session, world.incident_a, agency="csc", subject_ref="c1", area=AREA_A)
    assert client.get(url, headers=world.headers["csc_a"]).status_code == 200


def test_a_flag_for_the_agency_outside_its_areas_gives_no_access(
    client: TestClient, world: World, session: Session
) -> None:
    # A school flag on incident B (area B): the area A school still cannot see it.
    give_flag(session, world.incident_b, agency="school", subject_ref="c1", area=AREA_B)
    r = client.get(f"/v1/incidents/{world.incident_b}", headers=world.headers["school_a"])
    assert r.status_code == 404


def test_an_agency_key_for_all_areas_sees_flagged_incidents_anywhere(
    client: TestClient, world: World, make_key: KeyMaker
) -> None:
    csc_all = make_key("agency", agency="csc", areas=["*"])
    assert client.get(f"/v1/incidents/{world.incident_b}", headers=csc_all).status_code == 200
    # ... but still only those flagged for it.
    assert client.get(f"/v1/incidents/{world.incident_a}", headers=csc_all).status_code == 404


# --------------------------------------------------------------------------- property level


def count(session: Session, model: type[Any]) -> int:
    return int(session.scalar(select(func.count()).select_from(model)) or 0)


# Mass assignment (OWASP API3): properties the caller may not set, on every write.
UNKNOWN_PROPERTY_WRITES: tuple[tuple[str, str, str, dict[str, Any]], ...] = (
    ("submitter_a", "POST", "/v1/incidents", {**incident_body(), "risk_level": "standard"}),
    ("submitter_a", "POST", "/v1/incidents", {**incident_body(), "created_by": "someone"}),
    ("admin", "POST", "/v1/admin/keys", {"role": "auditor", "key_hash": "0" * 64}),
    ("admin", "POST", "/v1/admin/keys", {"role": "auditor", "revoked_at": None}),
    (
        "admin",
        "POST",
        "/v1/incidents/{incident_a}/erase",
        {"reason": "test: retention", "erased_by": "someone else"},
    ),
    (
        "triage_a",
        "POST",
        "/v1/incidents/{incident_a}/judgements",
        {"level": "high", "rationale": "test", "by": "someone else"},
    ),
)


def test_unknown_properties_in_writes_are_422_and_change_nothing(
    client: TestClient, world: World, session: Session
) -> None:
    for who, method, route, body in UNKNOWN_PROPERTY_WRITES:
        before = (count(session, models.Incident), client_keys(client, world))
        r = client.request(
            method, route.format(incident_a=world.incident_a), headers=world.headers[who], json=body
        )
        assert r.status_code == 422, (route, body, r.text)
        assert r.headers["content-type"] == PROBLEM
        assert (count(session, models.Incident), client_keys(client, world)) == before
    incident = session.get(models.Incident, uuid.UUID(world.incident_a))
    assert incident is not None
    assert incident.erased_at is None
    assert incident.version == 1


def client_keys(client: TestClient, world: World) -> int:
    r = client.get("/v1/admin/keys", headers=world.headers["admin"])
    assert r.status_code == 200
    return len(r.json())
