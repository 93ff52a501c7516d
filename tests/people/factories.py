"""Hand-written incidents for the people tests.

Every name, date of birth, identifier and reference here is invented test data: none of
it describes a real person or incident.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi.testclient import TestClient

AREA = "E09000018"
OTHER_AREA = "E09000020"
SYSTEM = "force-a-records"
# The last incident of most sequences; others are placed relative to it.
T0 = dt.datetime(2026, 11, 20, 22, 15, tzinfo=dt.UTC)

# A "medium" victim with open flags (strangulation: red flag), but no MARAC criterion of
# its own: MARAC routes in these tests come from history only.
MEDIUM_ANSWERS = {"strangulation": "yes"}
# Fourteen "yes": visible high risk, a MARAC referral.
HIGH_ANSWERS = dict.fromkeys(
    (
        "current_injury",
        "very_frightened",
        "afraid_of_further_harm",
        "separation_past_year",
        "child_contact_conflict",
        "stalking_harassment",
        "abuse_more_often",
        "abuse_getting_worse",
        "controlling_or_jealous",
        "threat_to_kill",
        "strangulation",
        "financial_issues",
        "substance_or_mental_health",
        "criminal_history",
    ),
    "yes",
)


def days_before(days: float, moment: dt.datetime = T0) -> dt.datetime:
    return moment - dt.timedelta(days=days)


def person(
    ref: str,
    role: str,
    given: str | None = None,
    family: str | None = None,
    dob: str | None = None,
    *,
    pnc: str | None = None,
    nhs: str | None = None,
    source: str | None = None,
    unborn: bool = False,
    child: dict[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"ref": ref, "role": role}
    if given or family:
        out["name"] = {k: v for k, v in (("given", given), ("family", family)) if v}
    if dob:
        out["date_of_birth"] = dob
    identifiers = [
        {"scheme": scheme, "value": value}
        for scheme, value in (("pnc", pnc), ("nhs", nhs), ("source", source))
        if value
    ]
    if identifiers:
        out["identifiers"] = identifiers
    if unborn:
        out["unborn"] = True
        out["expected_date"] = "2027-03-01"
    if role == "child":
        out["child"] = child or {"present": False}
    return out


def victim(given: str, family: str, dob: str | None = None, **ids: str) -> dict[str, Any]:
    return person("v1", "victim", given, family, dob, **ids)  # type: ignore[arg-type]


def perpetrator(given: str, family: str, dob: str | None = None, **ids: str) -> dict[str, Any]:
    return person("p1", "perpetrator", given, family, dob, **ids)  # type: ignore[arg-type]


def child(ref: str, given: str, family: str, dob: str | None, **ids: str) -> dict[str, Any]:
    return person(ref, "child", given, family, dob, **ids)  # type: ignore[arg-type]


def make_incident(
    reference: str,
    occurred_at: dt.datetime,
    persons: list[dict[str, Any]],
    *,
    answers: dict[str, str] | None = None,
    area: str = AREA,
    victim_history: dict[str, Any] | None = None,
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "source": {"system": SYSTEM, "reference": reference},
        "area": area,
        "occurred_at": occurred_at.isoformat(),
        "persons": persons,
        "relationship": {"victim": "v1", "perpetrator": "p1", "type": "intimate_partner"},
        "victim_checklist": {"instrument": "dash-ric", "answers": dict(answers or {})},
    }
    if victim_history:
        body["victim_history"] = victim_history
    return body


# Recurring people of the sequences (all invented).
AMY = {"given": "Amy", "family": "Okafor", "dob": "1995-04-12"}
BETH = {"given": "Beth", "family": "Lindqvist", "dob": "1988-09-30"}
CARA = {"given": "Cara", "family": "Mbeki", "dob": "1991-01-17"}
PAUL = {"given": "Paul", "family": "Strand", "dob": "1986-06-03"}
QUINN = {"given": "Quinn", "family": "Harrow", "dob": "1979-12-24"}


def submit(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/incidents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def trigger(result: dict[str, Any], rule: str) -> dict[str, Any]:
    victim_triggers = result["assessment"]["victim"]["triggers"]
    return next(t for t in victim_triggers if t["rule"] == rule)
