"""Builders and readers for the rules-v2 acceptance scenarios
(tests/scoring/test_rules_v2_scenarios.py; the specification is docs/rules.md).

Everything goes through the HTTP API: an incident is POSTed by a submitter, the 201 body is
read, and the flags are read again with GET /v1/flags by a triage key (both must agree).

All data is invented: no names at all, dates of birth chosen for the ages the rules look
at, and (in one test) an invented PNC-shaped identifier that only links two invented
incidents of one invented victim.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from app.contract.items import INSTRUMENT_ITEMS
from tests.flags.api_helpers import flags_of

LONDON = ZoneInfo("Europe/London")
AREA = "E09000018"
SYSTEM = "force-a-records"
RIC_ITEMS: tuple[str, ...] = tuple(INSTRUMENT_ITEMS["dash-ric"])

# Tuesday 17 November 2026, 10:00 GMT (London = UTC in winter): a school and working day,
# after 08:30, so Operation Encompass is due on Wednesday.
TUESDAY_10 = "2026-11-17T10:00:00Z"
ADULT_DOB = "1990-01-01"  # 36: no adult-safeguarding route by age
CHILD_DOB = "2016-03-01"  # 10 on every incident date used here: no under-7 step


def utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(dt.UTC)


def london(text: str) -> str:
    """A UTC time as London wall-clock text, for failure messages."""
    return utc(text).astimezone(LONDON).strftime("%a %d %b %Y %H:%M %Z")


# --------------------------------------------------------------------------- building


def answers(
    *,
    yes: Iterable[str] = (),
    unknown: Iterable[str] = (),
    not_asked: Iterable[str] = (),
    no: Iterable[str] | None = None,
) -> dict[str, str]:
    """dash-ric answers: every item ``no`` except those listed.

    With ``no`` given, only the items listed anywhere are answered; the rest are left out
    (recorded as ``not_asked`` by the service).
    """
    result = dict.fromkeys(RIC_ITEMS if no is None else no, "no")
    for item in yes:
        result[item] = "yes"
    for item in unknown:
        result[item] = "unknown"
    for item in not_asked:
        result[item] = "not_asked"
    return result


def school(urn: str = "100123", phase: str | None = None) -> dict[str, Any]:
    """A recorded school or setting (invented name and URN; ``phase`` is new in v2)."""
    out: dict[str, Any] = {"name": "Invented School", "urn": urn}
    if phase is not None:
        out["phase"] = phase
    return out


def child(ref: str = "c1", *, dob: str = CHILD_DOB, **facts: Any) -> dict[str, Any]:
    """A born child with only the given facts recorded (``facts`` go into ``child``)."""
    return {"ref": ref, "role": "child", "date_of_birth": dob, "child": dict(facts)}


def incident(
    *,
    reported_at: str = TUESDAY_10,
    occurred_at: str | None = None,
    yes: Iterable[str] = (),
    unknown: Iterable[str] = (),
    not_asked: Iterable[str] = (),
    answer_map: Mapping[str, str] | None = None,
    checklist: Mapping[str, Any] | None = None,
    with_checklist: bool = True,
    victim: Mapping[str, Any] | None = None,
    children: Iterable[Mapping[str, Any]] = (),
    relationship: Mapping[str, Any] | None = None,
    circumstances: Mapping[str, Any] | None = None,
    perpetrator_history: Mapping[str, Any] | None = None,
    victim_history: Mapping[str, Any] | None = None,
    officer: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A minimal incident: victim v1 (36), perpetrator p1, the given children and answers.

    Every checklist item is answered ``no`` unless listed (or ``answer_map`` is given), so
    ``unknown_count`` is exactly what the test asks for.
    """
    body: dict[str, Any] = {
        "source": {"system": SYSTEM, "reference": f"V2-{uuid.uuid4().hex[:12]}"},
        "area": AREA,
        "occurred_at": occurred_at or reported_at,
        "reported_at": reported_at,
        "persons": [
            {"ref": "v1", "role": "victim", "date_of_birth": ADULT_DOB, **dict(victim or {})},
            {"ref": "p1", "role": "perpetrator"},
            *[dict(c) for c in children],
        ],
        "relationship": {"victim": "v1", "perpetrator": "p1", **dict(relationship or {})},
    }
    if with_checklist:
        body["victim_checklist"] = {
            "instrument": "dash-ric",
            **dict(checklist or {}),
            "answers": dict(answer_map)
            if answer_map is not None
            else answers(yes=yes, unknown=unknown, not_asked=not_asked),
        }
    for key, value in (
        ("circumstances", circumstances),
        ("perpetrator_history", perpetrator_history),
        ("victim_history", victim_history),
        ("officer_assessment", officer),
    ):
        if value is not None:
            body[key] = dict(value)
    return body


# --------------------------------------------------------------------------- reading


@dataclass
class Outcome:
    """The 201 body of POST /v1/incidents and the incident's flags from GET /v1/flags."""

    body: dict[str, Any]
    flags: list[dict[str, Any]]

    @property
    def incident_id(self) -> str:
        return str(self.body["incident_id"])

    @property
    def victim(self) -> dict[str, Any]:
        victim: dict[str, Any] = self.body["assessment"]["victim"]
        return victim

    def child(self, ref: str) -> dict[str, Any]:
        [found] = [c for c in self.body["assessment"]["children"] if c["person_ref"] == ref]
        return dict(found)

    def children(self) -> dict[str, tuple[str, str]]:
        """person_ref → (level, recommended_response), for every assessed child."""
        return {
            c["person_ref"]: (c["level"], c["recommended_response"])
            for c in self.body["assessment"]["children"]
        }

    def item(self, item_id: str) -> dict[str, Any]:
        [found] = [i for i in self.victim["items"] if i["id"] == item_id]
        return dict(found)

    def fired(self) -> set[str]:
        """The victim's triggers that fired (a trigger without ``fired`` counts as fired)."""
        return {t["rule"] for t in self.victim["triggers"] if t.get("fired", True)}

    def pairs(self) -> set[tuple[str, str]]:
        """The SET of (flag type, subject ref)."""
        return {(f["type"], f["subject_ref"]) for f in self.flags}

    def of(self, flag_type: str, subject_ref: str) -> list[dict[str, Any]]:
        return [f for f in self.flags if f["type"] == flag_type and f["subject_ref"] == subject_ref]

    def one(self, flag_type: str, subject_ref: str) -> dict[str, Any]:
        found = self.of(flag_type, subject_ref)
        assert len(found) == 1, f"expected one {flag_type} flag for {subject_ref}, got {found}"
        return found[0]

    def agencies(self, flag_type: str, subject_ref: str) -> set[str]:
        return {f["agency"] for f in self.of(flag_type, subject_ref)}


def submit(
    client: TestClient,
    submitter: dict[str, str],
    triage: dict[str, str],
    body: Mapping[str, Any],
) -> Outcome:
    r = client.post("/v1/incidents", json=dict(body), headers=submitter)
    # docs/rules.md "Incident fields added": the new optional fields (care_and_support_needs,
    # under_probation_supervision, existing_plan early_help, school.phase) must be accepted.
    assert r.status_code == 201, (
        "v2: the incident (with the fields docs/rules.md adds) must be accepted with 201; got "
        f"{r.status_code}: {r.text[:600]}"
    )
    result: dict[str, Any] = r.json()
    fetched = flags_of(client, triage, str(result["incident_id"]))

    def triples(flags: list[Any]) -> list[tuple[str, str, str]]:
        return sorted((f["type"], f["agency"], f["subject_ref"]) for f in flags)

    assert triples(result["flags"]) == triples(fetched), "201 body and GET /v1/flags disagree"
    return Outcome(result, fetched)


def assert_victim(
    outcome: Outcome,
    *,
    level: str,
    score: int,
    unknown_count: int,
    marac: Iterable[str] = (),
) -> None:
    """Level, score, unknown_count, and MARAC: ``refer`` iff any criterion, criteria as a set."""
    v = outcome.victim
    criteria = set(marac)
    got = {
        "level": v["level"],
        "score": v["score"],
        "unknown_count": v["unknown_count"],
        "marac.refer": v["marac"]["refer"],
        "marac.criteria": set(v["marac"]["criteria"]),
    }
    want = {
        "level": level,
        "score": score,
        "unknown_count": unknown_count,
        "marac.refer": bool(criteria),
        "marac.criteria": criteria,
    }
    assert got == want


def assert_due(flag: Mapping[str, Any], expected_utc: str) -> None:
    assert utc(flag["due_at"]) == utc(expected_utc), (
        f"{flag['type']} for {flag['subject_ref']}: due {flag['due_at']} "
        f"({london(flag['due_at'])}), expected {expected_utc} ({london(expected_utc)})"
    )


def item_source(item: Mapping[str, Any]) -> Any:
    """Where an item's effective answer came from (rules v2, rule 1): `answer`, `observed`
    or `recorded`; None on a version-1 item."""
    return item.get("source")
