"""The area report over incidents seeded through the API with known counts: the figures
match, every count below 5 is hidden, and no hidden count can be worked out from what is
published (the tables' totals, and the flags' totals published once for two tables).

All data is invented test data (tests/data/README.md).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import uuid
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from app.audit.chain import seal_all
from app.audit.models import AuditEvent
from app.incidents.models import Incident, IncidentPerson, Person
from app.reports.area import LONDON, area_report
from app.reports.suppression import HIDDEN
from tests.conftest import KeyMaker
from tests.flags.api_helpers import AREA_A, AREA_B, incident_at, list_flags, patch_flag
from tests.reports.test_suppression import _solve_hidden

REPORT = "/v1/reports/areas/{area}"


def _month_starts() -> list[dt.date]:
    """The first days of the month before last, last month, this month and the next."""
    today = dt.datetime.now(LONDON).date()
    first = today.replace(day=1)
    out = []
    for back in (2, 1, 0, -1):
        index = first.year * 12 + first.month - 1 - back
        out.append(dt.date(index // 12, index % 12 + 1, 1))
    return out


def _at(day: dt.date, hour: int = 10) -> str:
    when = dt.datetime.combine(day, dt.time(hour), LONDON)
    return when.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")


def _repeat_marac(body: dict[str, Any], referred: dt.date) -> dict[str, Any]:
    body["victim_history"]["last_marac_referral"] = referred.isoformat()
    return body


def _standard(body: dict[str, Any]) -> dict[str, Any]:
    """Victim and perpetrator only, nothing of concern answered, no separation."""
    body["persons"] = [p for p in body["persons"] if p["role"] != "child"]
    answers = body["victim_checklist"]["answers"]
    for item in answers:
        answers[item] = "no"
    body["victim_checklist"].pop("comments", None)
    body["circumstances"] = dict.fromkeys(body["circumstances"], False)
    body["relationship"]["separation"] = {"status": "none"}
    body["perpetrator_history"] = {"prior_da_incidents_total": 0, "prior_da_victims": 0}
    body["victim_history"] = {"prior_da_incidents_12m": 0}
    body["officer_assessment"] = {"victim_perception": "standard"}
    return body


def _post(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> dict[str, Any]:
    r = client.post("/v1/incidents", json=body, headers=headers)
    assert r.status_code == 201, r.text
    reply: dict[str, Any] = r.json()
    return reply


def _cells(report: dict[str, Any], name: str) -> dict[tuple[str, str], Any]:
    [table] = [t for t in report["tables"] if t["name"] == name]
    cells = {(row["row"], c): v for row in table["rows"] for c, v in row["values"].items()}
    if table["total"] is not None:
        cells.update({("total", c): v for c, v in table["total"]["values"].items()})
    return cells


def _assert_nothing_recoverable(report: dict[str, Any]) -> None:
    """Each table as an attacker sees it: a total it does not publish is an unknown too,
    except the flags by agency's total row, which the flags by month publish. No cell it
    shows as hidden may follow from the equations, and no count it shows is below 5."""
    by_name = {t["name"]: t for t in report["tables"]}
    for table in report["tables"]:
        columns, total_column = table["columns"], table["total_column"]
        unpublished: set[tuple[str, str]] = set()

        def line(values: dict[str, Any], columns: Any = columns, total: Any = total_column) -> Any:
            return {**{c: values[c] for c in columns}, "total": values[total] if total else HIDDEN}

        rows = {row["row"]: line(row["values"]) for row in table["rows"]}
        if not total_column:
            unpublished |= {(r, "total") for r in [*rows, "*"]}
        source = table["total"]
        if table["name"] == "flags_by_agency":
            source = by_name["flags_by_month"]["total"]
        if source is None:
            total_row = dict.fromkeys([*columns, "total"], HIDDEN)
            unpublished |= {("*", c) for c in total_row}
        else:
            total_row = line(source["values"])
        leaked = set(_solve_hidden(rows, total_row, columns)) - unpublished
        assert not leaked, (table["name"], leaked)
        for key, value in _cells(report, table["name"]).items():
            assert value == HIDDEN or value >= 5, (table["name"], key, value)


def seed_three_months(client: TestClient, submitter: dict[str, str]) -> list[str]:
    """Area A over the month before last, last month and this month (``_month_starts``);
    returns the ids of the second month's incidents.

    Month 1: seven high-risk incidents with a child present and an unborn child; five of
    the victims were referred to MARAC two months before (a repeat). Month 2: six of the
    same households again (same victim and perpetrator). Month 3: two standard-risk
    incidents (no children, no separation). And one incident in area B.
    """
    first, second, third, _ = _month_starts()
    bodies = []
    for n in range(7):
        body = incident_at(_at(first + dt.timedelta(days=n)))
        if n < 5:
            _repeat_marac(body, first - dt.timedelta(days=60))
        bodies.append(body)
        reply = _post(client, submitter, body)
        assert reply["assessment"]["victim"]["level"] == "high"
        assert reply["assessment"]["victim"]["marac"]["refer"] is True
    second_ids = []
    for n, earlier in enumerate(bodies[:6]):
        body = incident_at(_at(second + dt.timedelta(days=n)))
        body["persons"] = earlier["persons"]
        second_ids.append(_post(client, submitter, body)["incident_id"])
    for n in range(2):
        reply = _post(client, submitter, _standard(incident_at(_at(third, 1 + n))))
        assert reply["assessment"]["victim"]["level"] == "standard"
    # An incident in another area counts for nothing in area A.
    _post(client, submitter, incident_at(_at(first), area=AREA_B))
    return second_ids


def test_area_report_counts_suppression_csv_and_audit(
    client: TestClient, make_key: KeyMaker, session: Session
) -> None:
    submitter = make_key("submitter")
    triage = make_key("triage", areas=[AREA_A])
    auditor = make_key("auditor")
    partnership = make_key("partnership", areas=[AREA_A])
    first, second, third, after = _month_starts()
    m1, m2, m3 = (d.strftime("%Y-%m") for d in (first, second, third))

    feb_ids = seed_three_months(client, submitter)
    # Six retention reviews fall due in month 2 (none done).
    session.execute(
        update(Incident)
        .where(Incident.id.in_([uuid.UUID(i) for i in feb_ids]))
        .values(review_due_at=dt.datetime.combine(second, dt.time(12), dt.UTC))
    )
    session.commit()
    # Triage works six of area A's flags: each is done (its first action).
    flags = list_flags(client, triage, area=AREA_A)
    for flag in flags[:6]:
        assert patch_flag(client, triage, flag, {"status": "done"}).status_code == 200
    every_flag = list_flags(
        client, auditor, area=AREA_A, status=["open", "acknowledged", "in_progress", "done"]
    )

    query = {"from": first.isoformat(), "to": after.isoformat()}
    r = client.get(REPORT.format(area=AREA_A), params=query, headers=partnership)
    assert r.status_code == 200, r.text
    report = r.json()
    assert report["from"] == first.isoformat()
    assert report["suppression"] == {"threshold": 5, "shown_as": "<5"}

    # The counts before suppression, from the service itself, match the seeded data.
    direct = area_report(session, AREA_A, first, after, dt.datetime.now(dt.UTC))

    def raw(name: str, row: str, measure: str = "total") -> int:
        return direct.table(name).raw[row][measure]

    assert [raw("victim_levels", m) for m in (m1, m2, m3, "total")] == [7, 6, 2, 15]
    assert raw("victim_levels", m1, "high") == 7
    assert raw("victim_levels", m3, "standard") == 2
    for fact in ("present", "witnessed", "intervened", "not_spoken_to"):
        assert [raw("children_affected", m, fact) for m in (m1, m2, m3)] == [7, 6, 0]
    assert raw("children_affected", "total", "injured") == 0
    assert raw("child_levels", "total") == 26  # two per incident of months 1-2
    assert raw("repeats", m2, "repeat_victim") == 6
    assert raw("repeats", m2, "repeat_perpetrator") == 6
    assert raw("repeats", m1, "repeat_victim") == 0
    assert raw("repeats", "total", "repeat_victim") == 6
    assert raw("separation", "total", "separation_related") == 13
    assert raw("marac", m1, "repeat_referral") == 5
    assert raw("marac", m1, "first_referral") == 2
    assert raw("flags_by_month", "total") == len(every_flag)
    assert raw("flags_by_month", "total", "done") == 6
    assert raw("flag_first_action", "total", "actioned") == 6
    assert raw("reviews", m2, "not_done") == 6
    assert raw("reviews", "total") == 6
    assert direct.json()["tables"] == report["tables"]  # the same figures, suppressed

    # Published: each count is its own figure or hidden, and hidden when below 5.
    shown = 0
    for table in report["tables"]:
        raw_table = direct.table(table["name"]).raw
        for (row, measure), value in _cells(report, table["name"]).items():
            count = raw_table[row]["total" if measure == table["total_column"] else measure]
            assert value in (count, HIDDEN), (table["name"], row, measure)
            if count < 5:
                assert value == HIDDEN, (table["name"], row, measure)
            shown += value != HIDDEN
    assert shown > 20
    # A rate is withheld when a count it is made from is hidden.
    [marac_table] = [t for t in report["tables"] if t["name"] == "marac"]
    month1 = next(row for row in marac_table["rows"] if row["row"] == m1)
    assert month1["values"]["first_referral"] == HIDDEN  # 2
    assert month1["rates"]["repeat_marac_rate"] == HIDDEN
    assert report["summary"]["repeat_marac_benchmark"]["low"] == 0.28
    [sep] = [t for t in report["tables"] if t["name"] == "separation"]
    share = sep["total"]["rates"]["separation_share"]
    assert share in (HIDDEN, round(13 / 15, 4))
    [by_agency] = [t for t in report["tables"] if t["name"] == "flags_by_agency"]
    assert by_agency["total"] is None  # published once, by month

    # No person-level rows: only months, agencies and totals.
    keys = {row["row"] for t in report["tables"] for row in t["rows"]}
    assert all(k[:4].isdigit() or not k[0].isdigit() for k in keys)
    assert not any(str(i) in r.text for i in feb_ids)
    _assert_nothing_recoverable(report)

    # The auditor gets the same figures; CSV carries them one per line.
    r_csv = client.get(
        REPORT.format(area=AREA_A), params={**query, "format": "csv"}, headers=auditor
    )
    assert r_csv.status_code == 200
    assert r_csv.headers["content-type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(r_csv.text)))
    assert lines[0] == ["table", "row", "measure", "value"]
    victim = _cells(report, "victim_levels")
    for key in ((m1, "high"), (m3, "incidents"), ("total", "incidents")):
        assert ["victim_levels", *key, str(victim[key])] in lines
    assert len(lines) == 1 + sum(
        len(row.get("values", {})) + len(row.get("rates") or {})
        for t in report["tables"]
        for row in [*t["rows"], *([t["total"]] if t["total"] else [])]
    )

    # Each read is an audit consult naming the area and period, never a figure.
    seal_all(session)  # reads' events wait to be chained on PostgreSQL
    events = session.scalars(select(AuditEvent).where(AuditEvent.record_type == "report")).all()
    assert [e.operation for e in events] == ["consult", "consult"]
    assert events[0].detail == {"area": AREA_A, **query, "format": "json"}
    assert events[0].person_ids == []


def test_who_may_read_which_area_and_bad_periods(client: TestClient, make_key: KeyMaker) -> None:
    partnership = make_key("partnership", areas=[AREA_A])
    query = {"from": "2026-01-01", "to": "2026-02-01"}
    assert client.get(REPORT.format(area=AREA_A), params=query, headers=partnership).is_success
    other = client.get(REPORT.format(area=AREA_B), params=query, headers=partnership)
    assert other.status_code == 404
    assert (
        client.get(
            REPORT.format(area=AREA_B), params=query, headers=make_key("triage", areas=[AREA_B])
        ).status_code
        == 403
    )
    for bad in (
        {"from": "2026-02-01", "to": "2026-01-01"},  # backwards
        {"from": "2020-01-01", "to": "2026-01-02"},  # over five years
        {"from": "yesterday", "to": "2026-01-01"},
        {"to": "2026-01-01"},
    ):
        r = client.get(REPORT.format(area=AREA_A), params=bad, headers=partnership)
        assert r.status_code == 422, bad
        assert r.headers["content-type"].startswith("application/problem+json")
        assert "yesterday" not in r.text


def test_repeat_victims_through_merged_records(
    client: TestClient, make_key: KeyMaker, session: Session
) -> None:
    """A victim's earlier incident on a record since merged into hers (either way round)
    makes the later one a repeat: the history reads a survivor's merged records too."""
    submitter = make_key("submitter")
    first, _, third, after = _month_starts()

    def victim_of(incident_id: str) -> uuid.UUID:
        return session.scalars(
            select(IncidentPerson.person_id).where(
                IncidentPerson.incident_id == uuid.UUID(incident_id),
                IncidentPerson.role == "victim",
            )
        ).one()

    pairs = []
    for n in range(2):
        earlier = _post(client, submitter, incident_at(_at(first, 1 + n)))["incident_id"]
        later = _post(client, submitter, incident_at(_at(third, 1 + n)))["incident_id"]
        pairs.append((victim_of(earlier), victim_of(later)))
    # Pair 0: the earlier incident's record merged into the later one's; pair 1: the other way.
    (old0, new0), (old1, new1) = pairs
    session.execute(update(Person).where(Person.id == old0).values(merged_into_id=new0))
    session.execute(update(Person).where(Person.id == new1).values(merged_into_id=old1))
    session.commit()

    direct = area_report(session, AREA_A, third, after, dt.datetime.now(dt.UTC))
    assert direct.table("repeats").raw["total"]["repeat_victim"] == 2
    assert direct.table("repeats").raw["total"]["repeat_perpetrator"] == 0
