"""Hostile and careless requests, on both databases: each is a 4xx problem+json that quotes
nothing it was sent and writes nothing.

For every request below: the status is a 4xx (the one expected, where it is certain), the
body is ``application/problem+json``, the marker planted in the request (an invented
name, ``Zqxsecretwood``) does not come back, and no table's row count changed. The names,
dates and references here are invented test data.
"""

from __future__ import annotations

import base64
import codecs
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.flags.cursor import encode_cursor
from app.models import load_all
from tests.conftest import KeyMaker, example_incident

PROBLEM = "application/problem+json"
MARK = "Zqxsecretwood"  # an invented name: it must never be answered back
UUID0 = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def settings(migrated_database: Database) -> Settings:
    # No write rate limit: a 429 would hide what the service says about the request.
    return Settings(environment="test", database_url=migrated_database.url, write_rate_per_minute=0)


def row_counts(session: Session) -> dict[str, int]:
    session.expire_all()
    return {
        t.name: session.execute(select(func.count()).select_from(t)).scalar_one()
        for t in load_all().metadata.sorted_tables
    }


@dataclass
class World:
    client: TestClient
    submitter: dict[str, str]
    triage: dict[str, str]
    auditor: dict[str, str]
    admin: dict[str, str]
    incident_id: str
    assessment_id: str
    flag_id: str
    etag: str
    person_id: str
    other_person_id: str


@pytest.fixture
def world(client: TestClient, make_key: KeyMaker) -> World:
    submitter = make_key("submitter")
    triage = make_key("triage")
    second = example_incident()
    second["source"]["reference"] = "HOSTILE-SECOND"
    for person in second["persons"]:
        person.pop("identifiers", None)
        if person.get("name"):
            person["name"]["family"] = "Otherfamily"
    # Two incidents: the listings then have a second page, and so a real cursor.
    assert client.post("/v1/incidents", json=second, headers=submitter).status_code == 201
    r = client.post("/v1/incidents", json=example_incident(), headers=submitter)
    assert r.status_code == 201, r.text
    created = r.json()
    incident_id = created["incident_id"]
    flag = created["flags"][0]
    stored = client.get(f"/v1/incidents/{incident_id}", headers=triage).json()
    persons = {p["ref"]: p["person_id"] for p in stored["persons"]}
    return World(
        client=client,
        submitter=submitter,
        triage=triage,
        auditor=make_key("auditor"),
        admin=make_key("admin"),
        incident_id=incident_id,
        assessment_id=created["assessment"]["id"],
        flag_id=flag["id"],
        etag=flag["etag"],
        person_id=persons["v1"],
        other_person_id=persons["p1"],
    )


@dataclass
class Attack:
    name: str
    method: str
    path: str  # may use {incident}, {assessment}, {flag}, {person}, {other}
    who: str = "submitter"
    json_body: Any = None
    raw: bytes | None = None
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    status: int | None = None  # the exact status, where it is certain


def incident_with(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = example_incident()
    data["source"]["reference"] = "HOSTILE-1"  # never the stored one: nothing may replay
    change(data)
    return data


def setter(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """``persons.0.name.given`` = value."""

    def change(data: dict[str, Any]) -> None:
        node: Any = data
        parts = path.split(".")
        for part in parts[:-1]:
            node = node[int(part)] if part.isdigit() else node.setdefault(part, {})
        last = parts[-1]
        if last.isdigit():
            node[int(last)] = value
        else:
            node[last] = value

    return change


def body_text(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False)


def with_raw_value(path: str, raw_json: str) -> bytes:
    """The example with the value at ``path`` replaced by a raw JSON fragment."""
    placeholder = "@@RAW@@"
    text = body_text(incident_with(setter(path, placeholder)))
    return text.replace(f'"{placeholder}"', raw_json).encode()


def intake(name: str, path: str, value: Any, status: int | None = 422) -> Attack:
    return Attack(
        name, "POST", "/v1/incidents", json_body=incident_with(setter(path, value)), status=status
    )


def intake_raw(name: str, raw: bytes, status: int | None = None) -> Attack:
    return Attack(
        name, "POST", "/v1/incidents", raw=raw, content_type="application/json", status=status
    )


def duplicate_key(path_to_object: str, key: str) -> bytes:
    """The example with ``key`` written twice in the object at ``path_to_object``."""
    data = incident_with(lambda _: None)
    node: Any = data
    for part in filter(None, path_to_object.split(".")):
        node = node[int(part)] if part.isdigit() else node[part]
    original = json.dumps(node[key])
    marker = '"@@DUP@@": 0'
    node["@@DUP@@"] = 0
    text = body_text(data)
    return text.replace(marker, f'"{key}": {original}, "{key}": "{MARK}"').encode()


def deep(depth: int) -> bytes:
    return ("[" * depth + "]" * depth).encode()


VICTIM_GIVEN = "persons.0.name.given"
ACCOUNT = "persons.2.child.account"

INTAKE_ATTACKS = [
    # A NUL or another control character, or half a surrogate pair, anywhere.
    intake("NUL in a name", VICTIM_GIVEN, f"{MARK}\u0000"),
    intake("NUL in a child's account", ACCOUNT, f"said {MARK}\u0000"),
    intake("NUL in submitted_by", "source.submitted_by", f"\u0000{MARK}"),
    intake(
        "NUL in a checklist comment",
        "victim_checklist.comments.stalking_harassment",
        f"{MARK}\u0000",
    ),
    intake("NUL in an identifier", "persons.0.identifiers.0.value", f"PNC\u0000{MARK}"),
    intake("bell character in a name", VICTIM_GIVEN, f"{MARK}\u0007"),
    intake("escape character in a name", "persons.0.name.family", f"\u001b[31m{MARK}"),
    intake("DEL in a name", VICTIM_GIVEN, f"{MARK}\u007f"),
    intake("backspace in an account", ACCOUNT, f"{MARK}\b\b"),
    intake_raw("lone high surrogate", with_raw_value(VICTIM_GIVEN, f'"{MARK}\\ud800"'), 422),
    intake_raw("lone low surrogate", with_raw_value(ACCOUNT, f'"\\udc00{MARK}"'), 422),
    intake_raw(
        "NUL in a key",
        with_raw_value("victim_checklist.answers", f'{{"current_injury\\u0000{MARK}": "yes"}}'),
        422,
    ),
    # Times no database or datetime can hold, and implausible dates.
    intake("occurred_at in year 9999 (UTC)", "occurred_at", "9999-12-31T23:59:59Z"),
    intake("occurred_at in year 9999 at -12:00", "occurred_at", "9999-12-31T23:59:59-12:00"),
    intake("occurred_at in year 1 at +14:00", "occurred_at", "0001-01-01T00:00:00+14:00"),
    intake("occurred_at without an offset", "occurred_at", "2026-11-20T22:15:00"),
    intake("occurred_at next year", "occurred_at", "2099-01-01T00:00:00Z"),
    intake("occurred_at not a time", "occurred_at", MARK),
    intake("reported_at in year 9999", "reported_at", "9999-12-31T23:59:59-12:00"),
    intake(
        "perpetrator's last incident in year 1",
        "perpetrator_history.last_incident_at",
        "0001-01-01T00:00:00+14:00",
    ),
    intake(
        "victim's last incident in year 9999",
        "victim_history.last_incident_at",
        "9999-12-31T23:59:59Z",
    ),
    intake("child born in year 1", "persons.2.date_of_birth", "0001-01-01"),
    intake("victim born in year 9999", "persons.0.date_of_birth", "9999-12-31"),
    intake("victim born in 1899", "persons.0.date_of_birth", "1899-12-31"),
    intake("date of birth 31 February", "persons.0.date_of_birth", "1990-02-31"),
    intake("unborn child expected in five years", "persons.3.expected_date", "2031-01-01"),
    intake("separation in year 9999", "relationship.separation.date", "9999-12-31"),
    intake("last MARAC referral in year 1", "victim_history.last_marac_referral", "0001-01-01"),
    intake(
        "an order expiring in year 9999",
        "perpetrator_history.active_orders",
        [{"type": "dvpo", "expires": "9999-12-31"}],
    ),
    # Numbers and booleans: strict, finite, in range.
    intake("a count as a string", "perpetrator_history.prior_da_incidents_total", "3"),
    intake("a count as a fraction", "perpetrator_history.prior_da_incidents_total", 3.5),
    intake("a count of 10^30", "perpetrator_history.prior_da_incidents_total", 10**30),
    intake("a negative count", "perpetrator_history.prior_da_incidents_total", -1),
    intake("a count as true", "perpetrator_history.prior_da_incidents_total", True),
    intake("a boolean as a string", "circumstances.physical_violence", "true"),
    intake("a boolean as 1", "circumstances.physical_violence", 1),
    intake("a boolean as null-ish text", "circumstances.weapon_used", "null"),
    intake_raw(
        "a count beyond a double",
        with_raw_value("perpetrator_history.prior_da_incidents_total", "1e400"),
        400,
    ),
    intake_raw(
        "a count of 5000 digits",
        with_raw_value("perpetrator_history.prior_da_incidents_total", "9" * 5000),
        400,
    ),
    intake_raw("NaN", with_raw_value("perpetrator_history.prior_da_incidents_total", "NaN"), 400),
    intake_raw("Infinity", with_raw_value("perpetrator_history.prior_da_victims", "Infinity"), 400),
    intake_raw(
        "-Infinity", with_raw_value("victim_history.prior_da_incidents_12m", "-Infinity"), 400
    ),
    # Keys given twice: the second would silently win.
    intake_raw("area twice", duplicate_key("", "area"), 422),
    intake_raw("source.system twice", duplicate_key("source", "system"), 422),
    intake_raw("a person's role twice", duplicate_key("persons.0", "role"), 422),
    intake_raw("an answer twice", duplicate_key("victim_checklist.answers", "current_injury"), 422),
    # Not UTF-8 JSON.
    intake_raw(
        "UTF-16 with a BOM",
        codecs.BOM_UTF16_LE
        + body_text(incident_with(setter(VICTIM_GIVEN, MARK))).encode("utf-16-le"),
        400,
    ),
    intake_raw(
        "UTF-16 without a BOM",
        body_text(incident_with(setter(VICTIM_GIVEN, MARK))).encode("utf-16-be"),
        400,
    ),
    intake_raw(
        "UTF-32", body_text(incident_with(setter(VICTIM_GIVEN, MARK))).encode("utf-32"), 400
    ),
    intake_raw(
        "UTF-8 with a BOM",
        codecs.BOM_UTF8 + body_text(incident_with(setter(VICTIM_GIVEN, MARK))).encode(),
        400,
    ),
    intake_raw(
        "invalid UTF-8 in a name",
        with_raw_value(VICTIM_GIVEN, '"@@X@@"').replace(b"@@X@@", MARK.encode() + b"\xff\xfe"),
        400,
    ),
    intake_raw(
        "overlong UTF-8",
        with_raw_value(VICTIM_GIVEN, '"@@X@@"').replace(b"@@X@@", MARK.encode() + b"\xc0\xaf"),
        400,
    ),
    intake_raw(
        "Latin-1 name",
        with_raw_value(VICTIM_GIVEN, '"@@X@@"').replace(
            b"@@X@@", MARK.encode() + "é".encode("latin-1")
        ),
        400,
    ),
    # Broken or hostile structure.
    intake_raw("nested 100,000 deep", deep(100_000)),
    intake_raw("nested 2,000 deep", deep(2_000)),
    intake(
        "a name nested 50 deep", "persons.0.name", json.loads('{"given": ' * 50 + "1" + "}" * 50)
    ),
    intake_raw(
        "truncated JSON", body_text(incident_with(setter(VICTIM_GIVEN, MARK)))[:-40].encode(), 422
    ),
    intake_raw("empty body", b"", 422),
    intake_raw("whitespace only", b"   \n", 422),
    intake_raw("a JSON array", b"[1, 2, 3]", 422),
    intake_raw("a JSON string", json.dumps(MARK).encode(), 422),
    intake_raw("null", b"null", 422),
    intake_raw(
        "single quotes",
        body_text(incident_with(setter(VICTIM_GIVEN, MARK))).replace('"', "'").encode(),
        422,
    ),
    intake_raw(
        "a trailing comma",
        body_text(incident_with(setter(VICTIM_GIVEN, MARK)))[:-1].encode() + b",}",
        422,
    ),
    intake_raw(
        "a comment",
        b"/* " + MARK.encode() + b" */ " + body_text(incident_with(lambda _: None)).encode(),
        422,
    ),
    Attack(
        "text/plain body",
        "POST",
        "/v1/incidents",
        raw=body_text(incident_with(setter(VICTIM_GIVEN, MARK))).encode(),
        content_type="text/plain",
        status=422,
    ),
    Attack(
        "XML body",
        "POST",
        "/v1/incidents",
        raw=f"<incident><name>{MARK}</name></incident>".encode(),
        content_type="application/xml",
        status=422,
    ),
    Attack(
        "form body",
        "POST",
        "/v1/incidents",
        raw=f"area=E09000018&name={MARK}".encode(),
        content_type="application/x-www-form-urlencoded",
        status=422,
    ),
    Attack(
        "multipart body",
        "POST",
        "/v1/incidents",
        raw=f'--b\r\nContent-Disposition: form-data; name="x"\r\n\r\n{MARK}\r\n--b--\r\n'.encode(),
        content_type="multipart/form-data; boundary=b",
        status=422,
    ),
    # The schema's own rules, with the marker where a message might quote it.
    intake("an unknown property named like a person", MARK.lower(), "x"),
    intake("an unknown property named like a field", "persons.0.nickname", MARK),
    intake("no persons", "persons", []),
    intake("one person", "persons", [example_incident()["persons"][0]]),
    intake("51 persons", "persons", [{"ref": f"o{i}", "role": "other_adult"} for i in range(51)]),
    intake("a person ref repeated", "persons.1.ref", "v1"),
    intake("a person ref that is a name", "persons.0.ref", f"{MARK} Hale"),
    intake("the victim names an absent ref", "relationship.victim", MARK),
    intake("the victim names the perpetrator", "relationship.victim", "p1"),
    intake("two victims", "persons.2.role", "victim"),
    intake("an unknown checklist item", f"victim_checklist.answers.{MARK}", "yes"),
    intake(
        "an unknown checklist item named like one", "victim_checklist.answers.zq_pregnant", "yes"
    ),
    intake("an answer that is not one", "victim_checklist.answers.current_injury", MARK),
    intake("a comment on an unknown item", f"victim_checklist.comments.{MARK}", "x"),
    intake("a fullwidth digit in a ref (homoglyph)", "persons.0.ref", "v\uff11"),
    intake("a Cyrillic letter in the area (homoglyph)", "area", "\u041509000018"),
    intake("SQL in the area", "area", f"E09000018' OR '1'='1' --{MARK}"),
    intake("a script in the source reference", "source.reference", f"<script>{MARK}</script>"),
    intake("an unknown identifier scheme", "persons.0.identifiers.0.scheme", "passport"),
    intake("an identifier of 65 characters", "persons.0.identifiers.0.value", "P" * 65),
    intake("a name of 201 characters", VICTIM_GIVEN, MARK + "x" * 200),
    intake("an account of 4001 characters", ACCOUNT, MARK + "x" * 4000),
    intake("reported before it occurred", "reported_at", "2026-11-19T22:15:00Z"),
    intake("child details on the victim", "persons.0.child", {"present": True}),
    intake("an unborn child with a date of birth", "persons.3.date_of_birth", "2026-01-01"),
    intake(
        "a judgement without a rationale", "officer_assessment", {"professional_judgement": "high"}
    ),
    intake("an unknown sex", "persons.0.sex", MARK),
    intake("an ethnicity code that is free text", "persons.0.ethnicity", MARK),
    Attack(
        "a sized body over the limit",
        "POST",
        "/v1/incidents",
        raw=b'{"area": "' + b"x" * 1_100_000 + b'"}',
        content_type="application/json",
        status=413,
    ),
    Attack(
        "an Idempotency-Key with a space",
        "POST",
        "/v1/incidents",
        json_body=incident_with(lambda _: None),
        headers={"Idempotency-Key": f"a {MARK}"},
        status=400,
    ),
    Attack(
        "an Idempotency-Key of 300 characters",
        "POST",
        "/v1/incidents",
        json_body=incident_with(lambda _: None),
        headers={"Idempotency-Key": "k" * 300},
        status=400,
    ),
    Attack(
        "no credentials",
        "POST",
        "/v1/incidents",
        who="none",
        json_body=incident_with(lambda _: None),
        status=401,
    ),
    Attack(
        "a garbage bearer",
        "POST",
        "/v1/incidents",
        who="none",
        json_body=incident_with(lambda _: None),
        headers={"Authorization": f"Bearer {MARK}"},
        status=401,
    ),
    Attack(
        "an unsigned JWT",
        "POST",
        "/v1/incidents",
        who="none",
        json_body=incident_with(lambda _: None),
        headers={
            "Authorization": "Bearer "
            + base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
            + "."
            + base64.urlsafe_b64encode(json.dumps({"sub": MARK}).encode()).decode().rstrip("=")
            + "."
        },
        status=401,
    ),
    Attack(
        "a triage key submitting",
        "POST",
        "/v1/incidents",
        who="triage",
        json_body=incident_with(lambda _: None),
        status=403,
    ),
    Attack(
        "another force's system",
        "POST",
        "/v1/incidents",
        json_body=incident_with(setter("source.system", f"force-b-{MARK.lower()}")),
        status=403,
    ),
]


READ_ATTACKS = [
    Attack(
        "an incident id that is not a UUID",
        "GET",
        f"/v1/incidents/{MARK}",
        who="triage",
        status=422,
    ),
    Attack("an incident id with NUL", "GET", "/v1/incidents/%00", who="triage", status=400),
    Attack(
        "a purpose in free text",
        "GET",
        "/v1/incidents/{incident}",
        who="triage",
        headers={"X-Purpose": f"checking {MARK}"},
        status=400,
    ),
    Attack(
        "a purpose code with a name as the case",
        "GET",
        "/v1/incidents/{incident}",
        who="triage",
        headers={"X-Purpose": f"triage:{MARK}"},
        status=400,
    ),
    Attack(
        "an unknown purpose code",
        "GET",
        "/v1/incidents/{incident}",
        who="triage",
        headers={"X-Purpose": "curiosity"},
        status=400,
    ),
    Attack(
        "a purpose of 200 characters",
        "GET",
        "/v1/incidents/{incident}",
        who="triage",
        headers={"X-Purpose": "triage:" + "1" * 193},
    ),
    Attack(
        "no purpose",
        "GET",
        "/v1/incidents/{incident}",
        who="triage",
        headers={"X-Purpose": ""},
        status=400,
    ),
    Attack(
        "due_before in year 9999 at -12:00",
        "GET",
        "/v1/flags?due_before=9999-12-31T23:59:59-12:00",
        who="triage",
        status=422,
    ),
    Attack(
        "due_after in year 1 at +14:00",
        "GET",
        "/v1/flags?due_after=0001-01-01T00:00:00%2B14:00",
        who="triage",
        status=422,
    ),
    Attack(
        "due_before not a time", "GET", f"/v1/flags?due_before={MARK}", who="triage", status=422
    ),
    Attack("a limit of 0", "GET", "/v1/flags?limit=0", who="triage", status=422),
    Attack("a limit of 10^30", "GET", f"/v1/flags?limit={10**30}", who="triage", status=422),
    Attack("a limit that is a word", "GET", f"/v1/flags?limit={MARK}", who="triage", status=422),
    Attack("an unknown status", "GET", f"/v1/flags?status={MARK}", who="triage", status=422),
    Attack(
        "a type that is a script", "GET", "/v1/flags?type=%3Cscript%3E", who="triage", status=422
    ),
    Attack("NUL in an area filter", "GET", "/v1/flags?area=E09%0000018", who="triage", status=400),
    Attack(
        "a person filter that is not a UUID",
        "GET",
        f"/v1/flags?person_id={MARK}",
        who="triage",
        status=422,
    ),
    Attack("a cursor that is garbage", "GET", f"/v1/flags?cursor={MARK}", who="triage", status=400),
    Attack(
        "a cursor of another query",
        "GET",
        "/v1/flags?cursor=" + encode_cursor("0" * 16, [1, "2026-01-01T00:00:00+00:00", UUID0]),
        who="triage",
        status=400,
    ),
    Attack(
        "a forged flag cursor with Infinity",
        "GET",
        "/v1/flags?cursor=@@C1@@",
        who="triage",
        status=400,
    ),
    Attack(
        "a forged flag cursor with 10^30",
        "GET",
        "/v1/flags?cursor=@@C2@@",
        who="triage",
        status=400,
    ),
    Attack(
        "a forged flag cursor in year 1", "GET", "/v1/flags?cursor=@@C3@@", who="triage", status=400
    ),
    Attack(
        "a forged flag cursor with true", "GET", "/v1/flags?cursor=@@C4@@", who="triage", status=400
    ),
    Attack(
        "a forged flag cursor naming a person",
        "GET",
        "/v1/flags?cursor=@@C5@@",
        who="triage",
        status=400,
    ),
    Attack(
        "a forged queue cursor with Infinity",
        "GET",
        "/v1/queue?cursor=@@Q1@@",
        who="triage",
        status=400,
    ),
    Attack(
        "a forged queue cursor in year 1 at +14:00",
        "GET",
        "/v1/queue?cursor=@@Q2@@",
        who="triage",
        status=400,
    ),
    Attack(
        "a forged queue cursor with a naive time",
        "GET",
        "/v1/queue?cursor=@@Q3@@",
        who="triage",
        status=400,
    ),
    Attack(
        "audit events from year 9999 at -12:00",
        "GET",
        "/v1/audit/events?from=9999-12-31T23:59:59-12:00",
        who="auditor",
        status=422,
    ),
    Attack(
        "audit events after 10^30",
        "GET",
        f"/v1/audit/events?after={10**30}",
        who="auditor",
        status=422,
    ),
    Attack("audit events after -1", "GET", "/v1/audit/events?after=-1", who="auditor", status=422),
    Attack(
        "audit events of an unknown operation",
        "GET",
        f"/v1/audit/events?operation={MARK}",
        who="auditor",
        status=422,
    ),
    Attack(
        "reviews due before year 1",
        "GET",
        "/v1/admin/reviews-due?before=0001-01-01T00:00:00%2B14:00",
        who="admin",
        status=422,
    ),
    Attack("a person id that is a name", "GET", f"/v1/persons/{MARK}", who="triage", status=422),
    Attack("an unknown assessment", "GET", f"/v1/assessments/{UUID0}", who="triage", status=404),
    Attack("path traversal", "GET", "/v1/incidents/..%2F..%2Fetc%2Fpasswd", who="triage"),
]

CHANGE_ATTACKS = [
    Attack(
        "a flag change without If-Match",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": "acknowledged"},
        status=428,
    ),
    Attack(
        "an unquoted If-Match",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": "acknowledged"},
        headers={"If-Match": "@@ETAG_BARE@@"},
        status=400,
    ),
    Attack(
        "a weak If-Match",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": "acknowledged"},
        headers={"If-Match": "W/@@ETAG@@"},
        status=412,
    ),
    Attack(
        "a half-quoted If-Match",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": "acknowledged"},
        headers={"If-Match": f'"{MARK}'},
        status=400,
    ),
    Attack(
        "a stale If-Match",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": "acknowledged"},
        headers={"If-Match": f'"{UUID0}.1"'},
        status=412,
    ),
    Attack(
        "status null",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": None},
        headers={"If-Match": "@@ETAG@@"},
        status=422,
    ),
    Attack(
        "an unknown status in a change",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": MARK},
        headers={"If-Match": "@@ETAG@@"},
        status=422,
    ),
    Attack(
        "not_required without a reason",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": "not_required"},
        headers={"If-Match": "@@ETAG@@"},
        status=422,
    ),
    Attack(
        "NUL in a status reason",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"status": "not_required", "status_reason": f"{MARK}\u0000"},
        headers={"If-Match": "@@ETAG@@"},
        status=422,
    ),
    Attack(
        "an empty change",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={},
        headers={"If-Match": "@@ETAG@@"},
        status=422,
    ),
    Attack(
        "an unknown property in a change",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={MARK.lower(): 1},
        headers={"If-Match": "@@ETAG@@"},
        status=422,
    ),
    Attack(
        "needs_review true",
        "PATCH",
        "/v1/flags/{flag}",
        who="triage",
        json_body={"needs_review": True},
        headers={"If-Match": "@@ETAG@@"},
        status=422,
    ),
    Attack(
        "a note with NUL",
        "POST",
        "/v1/flags/{flag}/notes",
        who="triage",
        json_body={"text": f"{MARK}\u0000"},
        status=422,
    ),
    Attack(
        "an empty note",
        "POST",
        "/v1/flags/{flag}/notes",
        who="triage",
        json_body={"text": ""},
        status=422,
    ),
    Attack(
        "a note of 4001 characters",
        "POST",
        "/v1/flags/{flag}/notes",
        who="triage",
        json_body={"text": MARK + "x" * 4000},
        status=422,
    ),
    Attack(
        "a note as a number",
        "POST",
        "/v1/flags/{flag}/notes",
        who="triage",
        json_body={"text": 12},
        status=422,
    ),
    Attack(
        "sharing without a lawful basis",
        "POST",
        "/v1/incidents/{incident}/disclosures",
        who="triage",
        json_body={
            "decision": "shared",
            "recipient_agency": "health",
            "purpose": "referral",
            "categories_shared": ["risk_assessment"],
            "consent_status": "given",
        },
        status=422,
    ),
    Attack(
        "sharing about an unknown person ref",
        "POST",
        "/v1/incidents/{incident}/disclosures",
        who="triage",
        json_body={
            "decision": "not_shared",
            "recipient_agency": "health",
            "purpose": "referral",
            "consent_status": "refused",
            "reason_not_shared": "refused",
            "subject_refs": [MARK],
        },
        status=422,
    ),
    Attack(
        "a decision dated year 9999",
        "POST",
        "/v1/incidents/{incident}/disclosures",
        who="triage",
        json_body={
            "decision": "not_shared",
            "recipient_agency": "health",
            "purpose": "referral",
            "consent_status": "refused",
            "reason_not_shared": "refused",
            "decided_at": "9999-12-31T23:59:59-12:00",
        },
        status=422,
    ),
    Attack(
        "NUL in a disclosure's purpose",
        "POST",
        "/v1/incidents/{incident}/disclosures",
        who="triage",
        json_body={
            "decision": "not_shared",
            "recipient_agency": "health",
            "purpose": f"{MARK}\u0000",
            "consent_status": "refused",
            "reason_not_shared": "refused",
        },
        status=422,
    ),
    Attack(
        "a judgement after intake without a rationale",
        "POST",
        "/v1/incidents/{incident}/judgements",
        who="triage",
        json_body={"level": "high", "rationale": "  "},
        status=422,
    ),
    Attack(
        "a judgement of an unknown level",
        "POST",
        "/v1/incidents/{incident}/judgements",
        who="triage",
        json_body={"level": MARK, "rationale": "seen"},
        status=422,
    ),
    Attack(
        "a revision of an unknown incident",
        "POST",
        f"/v1/incidents/{UUID0}/revisions",
        json_body=incident_with(lambda _: None),
        status=404,
    ),
    Attack(
        "a merge into itself",
        "POST",
        "/v1/persons/{person}/merge",
        who="triage",
        json_body={"into": "@@PERSON@@", "reason": "same"},
        status=422,
    ),
    Attack(
        "a merge into a name",
        "POST",
        "/v1/persons/{person}/merge",
        who="triage",
        json_body={"into": MARK, "reason": "same"},
        status=422,
    ),
    Attack(
        "a key that expires in 0 days",
        "POST",
        "/v1/admin/keys",
        who="admin",
        json_body={"role": "triage", "areas": ["E09000018"], "expires_in_days": 0},
        status=422,
    ),
    Attack(
        "a key that expires in '3' days",
        "POST",
        "/v1/admin/keys",
        who="admin",
        json_body={"role": "triage", "areas": ["E09000018"], "expires_in_days": "3"},
        status=422,
    ),
    Attack(
        "a key with an unknown role",
        "POST",
        "/v1/admin/keys",
        who="admin",
        json_body={"role": MARK},
        status=422,
    ),
    Attack(
        "an erasure without a reason",
        "POST",
        "/v1/incidents/{incident}/erase",
        who="admin",
        json_body={},
        status=422,
    ),
    Attack("DELETE on the key list", "DELETE", "/v1/admin/keys", who="admin", status=405),
    Attack(
        "PUT on an incident",
        "PUT",
        "/v1/incidents/{incident}",
        who="submitter",
        json_body={},
        status=405,
    ),
]

ALL_ATTACKS = INTAKE_ATTACKS + READ_ATTACKS + CHANGE_ATTACKS


def test_there_are_more_than_a_hundred_distinct_attacks() -> None:
    names = [a.name for a in ALL_ATTACKS]
    assert len(set(names)) == len(names)
    assert len(names) >= 100


def _fingerprint(world: World, path: str) -> str:
    """The query fingerprint of a filterless listing, read off a real cursor."""
    r = world.client.get(f"{path}?limit=1", headers=world.triage)
    cursor = r.json()["next_cursor"]
    padded = cursor + "=" * (-len(cursor) % 4)
    return str(json.loads(base64.urlsafe_b64decode(padded))["q"])


def _forged(world: World) -> dict[str, str]:
    """Cursors a client could forge: the real fingerprint, a key it chose."""
    flags_q = _fingerprint(world, "/v1/flags")
    queue_q = _fingerprint(world, "/v1/queue")
    t = "2026-01-01T00:00:00+00:00"
    return {
        "@@C1@@": encode_cursor(flags_q, [float("inf"), t, UUID0]),
        "@@C2@@": encode_cursor(flags_q, [10**30, t, UUID0]),
        "@@C3@@": encode_cursor(flags_q, [1, "0001-01-01T00:00:00+14:00", UUID0]),
        "@@C4@@": encode_cursor(flags_q, [True, t, UUID0]),
        "@@C5@@": encode_cursor(flags_q, [1, t, MARK]),
        "@@Q1@@": encode_cursor(queue_q, [float("inf"), t, UUID0]),
        "@@Q2@@": encode_cursor(queue_q, [1, "0001-01-01T00:00:00+14:00", UUID0]),
        "@@Q3@@": encode_cursor(queue_q, [1, "2026-01-01T00:00:00", UUID0]),
    }


def _send(world: World, attack: Attack, forged: dict[str, str]) -> Any:
    ids = {
        "{incident}": world.incident_id,
        "{assessment}": world.assessment_id,
        "{flag}": world.flag_id,
        "{person}": world.person_id,
        "{other}": world.other_person_id,
    }
    path = attack.path
    for placeholder, value in {**ids, **forged}.items():
        path = path.replace(placeholder, value)
    credentials = {
        "submitter": world.submitter,
        "triage": world.triage,
        "auditor": world.auditor,
        "admin": world.admin,
        "none": {},
    }[attack.who]
    headers = {**credentials, **attack.headers}
    for name, value in headers.items():
        headers[name] = value.replace("@@ETAG_BARE@@", world.etag.strip('"')).replace(
            "@@ETAG@@", world.etag
        )
    content: bytes | None = attack.raw
    if attack.json_body is not None:
        text = json.dumps(attack.json_body).replace("@@PERSON@@", world.person_id)
        content = text.encode()
        headers.setdefault("Content-Type", "application/json")
    if attack.content_type is not None:
        headers["Content-Type"] = attack.content_type
    return world.client.request(attack.method, path, content=content, headers=headers)


def _judge(attack: Attack, response: Any, before: dict[str, int], after: dict[str, int]) -> str:
    """Why the answer is wrong, or "" if it is right."""
    problems = []
    if not 400 <= response.status_code < 500:
        problems.append(f"status {response.status_code}")
    elif attack.status is not None and response.status_code != attack.status:
        problems.append(f"status {response.status_code}, expected {attack.status}")
    if response.headers.get("content-type") != PROBLEM:
        problems.append(f"content-type {response.headers.get('content-type')}")
    if MARK.lower() in response.text.lower():
        problems.append("the marker came back")
    changed = {t: (before[t], after[t]) for t in before if before[t] != after[t]}
    if changed:
        problems.append(f"rows changed: {changed}")
    return "; ".join(problems)


@pytest.mark.parametrize(
    "attacks",
    [
        pytest.param(INTAKE_ATTACKS, id="intake"),
        pytest.param(READ_ATTACKS, id="reads"),
        pytest.param(CHANGE_ATTACKS, id="changes"),
    ],
)
def test_every_hostile_request_is_a_quiet_4xx_that_writes_nothing(
    world: World, session: Session, attacks: list[Attack]
) -> None:
    forged = _forged(world)
    failures = []
    for attack in attacks:
        before = row_counts(session)
        response = _send(world, attack, forged)
        why = _judge(attack, response, before, row_counts(session))
        if why:
            failures.append(f"{attack.name}: {why}")
    assert not failures, "\n".join(failures)
