"""No personal data leaks: not into application logs, metrics or problem details.

Incidents are posted with distinctive invented names, identifiers, dates of birth and free
text; then every endpoint is exercised, error paths included, with every log line captured
at DEBUG (stdout, where the service writes, and the logging records themselves) and the
metrics scraped. None of the distinctive strings may appear in any of them, nor in the body
of any error response. Every value here is invented test data; none describes a real person.

The test client's own ``httpx`` logger is silenced: it prints the URLs the *test* requests,
which is the caller's log, not the service's.
"""

from __future__ import annotations

import copy
import io
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import event
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from tests.auth.scenario import AREA_A, incident_body, set_flags
from tests.conftest import KeyMaker, build_app

GIVEN = "Quillon"
FAMILY = "Marchbanks-Ytterby"
CHILD_GIVEN = "Wenceslava"
PNC = "99/999999Z"
NHS = "9990011223"
SOURCE_PERSON_ID = "PERS-QMY-77123"
VICTIM_DOB = "1983-07-14"
CHILD_DOB = "2017-09-03"
ACCOUNT = "Bramblewick-said-he-hid-under-the-stairs"
COMMENT = "Ytterby-comment-follows-her-to-work"
RATIONALE = "Quillonesque-rationale-marker"
KEY_MARKER = "QuillonKeyMarker9z"
DISTINCTIVE = (
    GIVEN,
    FAMILY,
    CHILD_GIVEN,
    PNC,
    NHS,
    SOURCE_PERSON_ID,
    VICTIM_DOB,
    CHILD_DOB,
    ACCOUNT,
    COMMENT,
    RATIONALE,
    KEY_MARKER,
)


def distinctive_incident(reference: str | None = None) -> dict[str, Any]:
    body = incident_body(area=AREA_A, reference=reference)
    victim, perpetrator, child, _unborn = body["persons"]
    victim["name"] = {"given": GIVEN, "family": FAMILY}
    victim["date_of_birth"] = VICTIM_DOB
    victim["identifiers"] = [
        {"scheme": "pnc", "value": PNC},
        {"scheme": "nhs", "value": NHS},
        {"scheme": "source", "value": SOURCE_PERSON_ID},
    ]
    perpetrator["name"] = {"given": "Ambrose", "family": FAMILY}
    child["name"] = {"given": CHILD_GIVEN, "family": FAMILY}
    child["date_of_birth"] = CHILD_DOB
    child["child"]["account"] = ACCOUNT
    body["victim_checklist"]["comments"] = {"stalking_harassment": COMMENT}
    return body


class Capture(logging.Handler):
    """Every record, rendered by the service's own formatter and also raw."""

    def __init__(self, formatter: logging.Formatter | None) -> None:
        super().__init__(logging.DEBUG)
        self.stream = io.StringIO()
        self.raw: list[str] = []
        if formatter is not None:
            self.setFormatter(formatter)

    def emit(self, record: logging.LogRecord) -> None:
        self.raw.append(repr(record.__dict__))
        self.stream.write(self.format(record) + "\n")


@contextmanager
def debug_client(
    migrated_database: Database, connection: Connection, caplog: pytest.LogCaptureFixture
) -> Iterator[tuple[TestClient, Capture]]:
    """The service at DEBUG, built inside the test so that its handler writes to the stdout
    that ``capsys`` captures now; caplog's handler is put back after the service replaces
    the root handlers, and a ``Capture`` is added beside them."""
    settings = Settings(environment="test", database_url=migrated_database.url, log_level="DEBUG")
    app = build_app(settings, migrated_database, connection)
    root = logging.getLogger()
    capture = Capture(root.handlers[0].formatter)
    root.addHandler(capture)
    root.addHandler(caplog.handler)
    caplog.handler.setLevel(logging.DEBUG)
    quiet = {name: logging.getLogger(name).level for name in ("httpx", "httpcore")}
    for name in quiet:
        logging.getLogger(name).setLevel(logging.WARNING)
    try:
        with TestClient(app, raise_server_exceptions=False) as c:
            yield c, capture
    finally:
        root.removeHandler(capture)
        for name, level in quiet.items():
            logging.getLogger(name).setLevel(level)


class Recorder:
    """Sends requests and keeps every error response for the problem-details check."""

    def __init__(self, client: TestClient) -> None:
        self.client = client
        self.errors: list[Response] = []
        self.statuses: list[tuple[str, int]] = []

    def __call__(self, method: str, url: str, expect: int, **kwargs: Any) -> Response:
        r = self.client.request(method, url, **kwargs)
        self.statuses.append((f"{method} {url.split('?')[0]}", r.status_code))
        assert r.status_code == expect, (method, url, r.status_code, r.text[:300])
        if r.status_code >= 400:
            self.errors.append(r)
        return r


def exercise_every_endpoint(
    call: Recorder, make_key: KeyMaker, session: Session, submitter: dict[str, str]
) -> None:
    triage = {**make_key("triage", areas=[AREA_A]), "X-Purpose": "triage"}
    other_triage = make_key("triage", areas=["E09000019"])
    auditor = make_key("auditor")
    admin = make_key("admin")
    # The school of the incident's child (the contract's example).
    school = make_key("agency", agency="school", areas=[AREA_A], schools=["100123"])

    body = distinctive_incident()
    key = {"Idempotency-Key": "pd-key-1"}
    created = call("POST", "/v1/incidents", 201, json=body, headers={**submitter, **key})
    iid = created.json()["incident_id"]
    call("POST", "/v1/incidents", 200, json=body, headers={**submitter, **key})  # replay
    changed = copy.deepcopy(body)
    changed["victim_checklist"]["answers"]["isolated"] = "yes"
    call("POST", "/v1/incidents", 409, json=changed, headers=submitter)
    call("POST", "/v1/incidents", 422, json=distinctive_incident(), headers={**submitter, **key})

    # Validation errors with the personal data in the rejected values.
    bad = distinctive_incident()
    bad["persons"][0]["nickname"] = f"{GIVEN} {FAMILY}"
    call("POST", "/v1/incidents", 422, json=bad, headers=submitter)
    bad = distinctive_incident()
    bad["persons"][0]["date_of_birth"] = f"{GIVEN}-{VICTIM_DOB}"
    call("POST", "/v1/incidents", 422, json=bad, headers=submitter)
    bad = distinctive_incident()
    bad["persons"][0]["sex"] = FAMILY
    call("POST", "/v1/incidents", 422, json=bad, headers=submitter)
    bad = distinctive_incident()
    bad["persons"][0]["identifiers"][0]["value"] = PNC * 10  # too long
    call("POST", "/v1/incidents", 422, json=bad, headers=submitter)
    bad = distinctive_incident()
    bad["victim_checklist"]["answers"]["isolated"] = GIVEN
    call("POST", "/v1/incidents", 422, json=bad, headers=submitter)
    bad = distinctive_incident()
    bad["officer_assessment"] = {"professional_judgement": "high", "rationale": " ", "x": ACCOUNT}
    call("POST", "/v1/incidents", 422, json=bad, headers=submitter)
    bad = distinctive_incident()
    bad["persons"][2]["ref"] = f"{GIVEN} {FAMILY}"  # not a valid ref
    call("POST", "/v1/incidents", 422, json=bad, headers=submitter)
    call(
        "POST",
        "/v1/incidents",
        422,
        content=f'{{"persons": [{{"name": "{GIVEN} {FAMILY}", '.encode(),
        headers={**submitter, "Content-Type": "application/json"},
    )
    call(
        "POST",
        "/v1/incidents",
        413,
        content=(f'{{"note": "{ACCOUNT}", "pad": "' + " " * 1_100_000 + '"}').encode(),
        headers={**submitter, "Content-Type": "application/json"},
    )
    other_system = distinctive_incident()
    other_system["source"]["system"] = "force-b-records"
    call("POST", "/v1/incidents", 403, json=other_system, headers=submitter)

    # Authentication failures with markers in the presented credential.
    for authorization in (
        f"Bearer tri_deadbeef_{KEY_MARKER}",
        f"Bearer eyJhbGciOiJub25lIn0.{KEY_MARKER}.",
        f"Basic {KEY_MARKER}",
    ):
        call(
            "GET",
            f"/v1/incidents/{iid}",
            401,
            headers={"Authorization": authorization, "X-Purpose": "triage"},
        )

    # Reads: allowed, out of scope, wrong role, without purpose, malformed ids.
    call("GET", f"/v1/incidents/{iid}", 200, headers=triage)
    call("GET", f"/v1/incidents/{iid}", 200, headers=submitter)
    call("GET", f"/v1/incidents/{iid}", 404, headers=other_triage)
    call("GET", f"/v1/incidents/{iid}", 403, headers=admin)
    no_purpose = {k: v for k, v in triage.items() if k != "X-Purpose"}
    call("GET", f"/v1/incidents/{iid}", 400, headers=no_purpose)
    call("GET", f"/v1/incidents/{GIVEN}-{FAMILY}", 422, headers=triage)
    call("GET", f"/v1/incidents/{uuid.uuid4()}", 404, headers=triage)
    call("GET", f"/v1/no-such-route/{GIVEN}%20{FAMILY}", 404, headers=triage)
    call("DELETE", f"/v1/incidents/{iid}", 405, headers=triage)
    set_flags(session, iid)  # whatever intake raised: none for the school
    call("GET", f"/v1/incidents/{iid}", 404, headers=school)
    set_flags(session, iid, ("school", "c1"))
    call("GET", f"/v1/incidents/{iid}", 200, headers=school)

    # Search: the values searched for are personal data, in the URL only.
    name = f"{GIVEN} {FAMILY}"
    found = {"name": name, "date_of_birth": VICTIM_DOB}
    call("GET", "/v1/incidents", 200, params=found, headers=triage)
    call("GET", "/v1/incidents", 200, params={"pnc": PNC}, headers=other_triage)
    call("GET", "/v1/incidents", 400, params={"name": name}, headers=triage)
    call(
        "GET",
        "/v1/incidents",
        400,
        params={"name": GIVEN, "date_of_birth": VICTIM_DOB},
        headers=triage,
    )
    call("GET", "/v1/incidents", 400, params={"pnc": PNC, **found}, headers=triage)
    call("GET", "/v1/incidents", 422, params={"name": name, "date_of_birth": GIVEN}, headers=triage)
    call("GET", "/v1/incidents", 422, params={"source_reference": name}, headers=triage)
    call("GET", "/v1/incidents", 403, params={"pnc": PNC}, headers=school)
    call("GET", "/v1/incidents", 400, params={"pnc": PNC}, headers=no_purpose)
    call("GET", "/v1/persons", 200, params=found, headers=auditor)
    call("GET", "/v1/persons", 200, params={"pnc": PNC}, headers=triage)
    call("GET", "/v1/persons", 400, params={"date_of_birth": VICTIM_DOB}, headers=triage)
    call("GET", "/v1/persons", 403, params={"pnc": PNC}, headers=admin)

    # Revision, judgement, assessments.
    revised = copy.deepcopy(body)
    revised["persons"][0]["name"]["given"] = f"{GIVEN}a"
    call("POST", f"/v1/incidents/{iid}/revisions", 201, json=revised, headers=submitter)
    mismatched = copy.deepcopy(revised)
    mismatched["source"]["reference"] = "PPN-OTHER-1"
    call("POST", f"/v1/incidents/{iid}/revisions", 422, json=mismatched, headers=submitter)
    call(
        "POST",
        f"/v1/incidents/{iid}/judgements",
        201,
        json={"level": "high", "rationale": RATIONALE},
        headers=triage,
    )
    call(
        "POST",
        f"/v1/incidents/{iid}/judgements",
        422,
        json={"level": GIVEN, "rationale": RATIONALE},
        headers=triage,
    )
    listing = call("GET", f"/v1/incidents/{iid}/assessments", 200, headers=triage).json()
    aid = listing["assessments"][0]["id"]
    call("GET", f"/v1/assessments/{aid}", 200, headers=triage)
    call("GET", f"/v1/assessments/{aid}/explanation", 200, headers=triage)
    call("POST", f"/v1/assessments/{aid}/reproduce", 200, headers=triage)
    call("GET", "/v1/checklists", 200, headers=triage)
    call("GET", f"/v1/checklists/{GIVEN}/versions/1", 404, headers=triage)

    # The audit log, keys, reviews.
    call("GET", "/v1/audit/events", 200, params={"record": iid}, headers=auditor)
    call("GET", "/v1/audit/events", 422, params={"operation": GIVEN}, headers=auditor)
    call("GET", "/v1/audit/export", 200, headers=auditor)
    call("GET", "/v1/audit/verify", 200, headers=auditor)
    call("GET", "/v1/admin/reviews-due", 200, headers=admin)
    call("GET", "/v1/admin/reviews-due", 400, params={"after": GIVEN}, headers=admin)
    call("GET", "/v1/admin/keys", 200, headers=admin)
    call("POST", "/v1/admin/keys", 422, json={"role": "agency", "label": GIVEN}, headers=admin)
    school_key = {"role": "agency", "agency": "school", "areas": [AREA_A], "label": GIVEN}
    call("POST", "/v1/admin/keys", 422, json=school_key, headers=admin)  # no school URN
    call("POST", "/v1/admin/keys", 422, json={**school_key, "schools": [PNC]}, headers=admin)

    # A fault deep inside a write, with personal data in the exception's message.
    def explode(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.startswith("INSERT INTO incident_submissions "):
            raise RuntimeError(f"injected fault about {GIVEN} {FAMILY} born {VICTIM_DOB}")

    engine = session.get_bind().engine
    event.listen(engine, "after_cursor_execute", explode)
    try:
        call("POST", "/v1/incidents", 500, json=distinctive_incident(), headers=submitter)
    finally:
        event.remove(engine, "after_cursor_execute", explode)

    # Erasure, and the errors around it.
    call("POST", f"/v1/incidents/{iid}/erase", 422, json={"reason": 7}, headers=admin)
    call(
        "POST", f"/v1/incidents/{iid}/erase", 200, json={"reason": "test: disposal"}, headers=admin
    )
    call(
        "POST", f"/v1/incidents/{iid}/erase", 409, json={"reason": "test: disposal"}, headers=admin
    )
    call("GET", f"/v1/incidents/{iid}", 200, headers=triage)
    call("GET", f"/v1/incidents/{iid}/assessments", 410, headers=triage)
    call("POST", f"/v1/incidents/{iid}/revisions", 410, json=revised, headers=submitter)

    call("GET", "/livez", 200)
    call("GET", "/readyz", 200)


def test_no_personal_data_in_logs_metrics_or_problem_details(
    capsys: pytest.CaptureFixture[str],
    caplog: pytest.LogCaptureFixture,
    migrated_database: Database,
    connection: Connection,
    make_key: KeyMaker,
    session: Session,
    submitter: dict[str, str],
) -> None:
    with debug_client(migrated_database, connection, caplog) as (client, capture):
        call = Recorder(client)
        exercise_every_endpoint(call, make_key, session, submitter)
        metrics = call("GET", "/metrics", 200).text

    stdout = capsys.readouterr().out
    outputs = {
        "stdout": stdout,
        "caplog": caplog.text,
        "log records": "\n".join(capture.raw),
        "rendered logs": capture.stream.getvalue(),
        "metrics": metrics,
        "problem details": "\n".join(f"{r.status_code} {r.headers} {r.text}" for r in call.errors),
    }
    # The capture really saw the service's logging.
    assert "authentication_failed" in stdout
    assert "unhandled_error" in stdout
    assert len(call.errors) >= 25
    assert {s for _, s in call.statuses} >= {
        200,
        201,
        400,
        401,
        403,
        404,
        405,
        409,
        410,
        413,
        422,
        500,
    }
    leaks = {where: sorted(s for s in DISTINCTIVE if s in text) for where, text in outputs.items()}
    assert leaks == {where: [] for where in outputs}, leaks
    for r in call.errors:
        assert r.headers["content-type"] == "application/problem+json"


# --------------------------------------------------------------------------- leaks found and closed


def test_a_name_sent_as_a_key_is_not_echoed_in_the_problem(
    client: TestClient, submitter: dict[str, str]
) -> None:
    bad = distinctive_incident()
    bad["victim_checklist"]["answers"][f"{GIVEN} {FAMILY}"] = "yes"
    r = client.post("/v1/incidents", json=bad, headers=submitter)
    assert r.status_code == 422
    assert GIVEN not in r.text


def test_the_service_never_redirects(client: TestClient, submitter: dict[str, str]) -> None:
    r = client.get(f"/v1/incidents/{GIVEN}-{FAMILY}/", headers=submitter, follow_redirects=False)
    assert not 300 <= r.status_code < 400
    assert GIVEN not in r.headers.get("location", "")


def test_an_unhandled_error_logged_by_the_server_carries_no_personal_data(
    migrated_database: Database, connection: Connection, caplog: pytest.LogCaptureFixture
) -> None:
    with debug_client(migrated_database, connection, caplog) as (_client, capture):
        try:
            incident = distinctive_incident()
            raise RuntimeError(f"bad row for {GIVEN} {FAMILY}: {incident['persons'][0]}")
        except RuntimeError as exc:
            # Exactly what uvicorn does with an exception that escapes the application.
            logging.getLogger("uvicorn.error").error(
                "Exception in ASGI application\n", exc_info=exc
            )
    rendered = capture.stream.getvalue()
    assert "Exception in ASGI application" in rendered
    assert GIVEN not in rendered
