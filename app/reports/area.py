"""Area statistics: what the incidents, assessments, flags and reviews of one area and
period add up to, month by month, with small numbers suppressed.

Every figure is defined in docs/reports.md. Each table goes through
:func:`app.reports.suppression.suppress_table` on its own; rates and medians are
published only through :func:`app.reports.suppression.derived`. Where two tables would
publish the same totals (the flags by month and by agency), the second leaves them out,
so no hidden cell can be worked out by setting one table beside another. Tables whose
columns are not parts of a whole (a child can be present *and* witness) publish no row
totals: a sum of them would count nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.contract.levels import CHILD_LEVELS, VICTIM_LEVELS
from app.flags.models import OPEN_STATUSES
from app.flags.vocabulary import AGENCIES
from app.reports import repository
from app.reports.repository import Occurrence
from app.reports.suppression import HIDDEN, THRESHOLD, Shown, derived, suppress_table

LONDON = ZoneInfo("Europe/London")
REPEAT_WINDOW_MONTHS = 12
MAX_SPAN_DAYS = 5 * 366
# SafeLives' benchmark for the share of MARAC cases that are repeats (docs/research.md §1.6).
REPEAT_MARAC_BENCHMARK = (0.28, 0.40)
# A review is done on time when its record was erased no later than this after it fell due.
REVIEW_GRACE = dt.timedelta(days=28)

Cell = Shown
Rate = float | str | None


@dataclass
class Table:
    """One published table: rows (months or agencies) by measures, suppressed."""

    name: str
    title: str
    rows_are: str  # "month" or "agency"
    columns: tuple[str, ...]
    total_column: str | None  # the name of the row total, or None when not published
    rows: list[dict[str, Any]] = field(default_factory=list)
    total: dict[str, Any] | None = None
    # The counts before suppression (row → measure → count, with the row totals and a
    # "total" row): for tests and checks inside the service, never published.
    raw: dict[str, dict[str, int]] = field(default_factory=dict)

    def json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "title": self.title,
            "rows_are": self.rows_are,
            "columns": list(self.columns),
            "total_column": self.total_column,
            "rows": self.rows,
            "total": self.total,
        }


def period_bounds(start: dt.date, end: dt.date) -> tuple[dt.datetime, dt.datetime]:
    """[start, end) as instants: local (Europe/London) midnights."""
    return (
        dt.datetime.combine(start, dt.time(), LONDON).astimezone(dt.UTC),
        dt.datetime.combine(end, dt.time(), LONDON).astimezone(dt.UTC),
    )


def months_of(start: dt.date, end: dt.date) -> list[str]:
    """Every calendar month that [start, end) touches, as ``YYYY-MM``."""
    months = []
    year, month = start.year, start.month
    last = end - dt.timedelta(days=1)
    while (year, month) <= (last.year, last.month):
        months.append(f"{year:04d}-{month:02d}")
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return months


def month_of(when: dt.datetime) -> str:
    local = when.astimezone(LONDON)
    return f"{local.year:04d}-{local.month:02d}"  # strftime costs some three times more


def months_before(when: dt.datetime, months: int) -> dt.datetime:
    """The same local day ``months`` calendar months earlier (the last day of a shorter
    month), as an instant."""
    local = when.astimezone(LONDON)
    index = local.year * 12 + local.month - 1 - months
    year, month = divmod(index, 12)
    month += 1
    for day in range(local.day, 27, -1):
        try:
            return local.replace(year=year, month=month, day=day).astimezone(dt.UTC)
        except ValueError:
            continue
    return local.replace(year=year, month=month, day=min(local.day, 28)).astimezone(dt.UTC)


# --------------------------------------------------------------------------- counting


def repeat_incidents(period: Iterable[Occurrence], history: Iterable[Occurrence]) -> set[Any]:
    """The period's incidents whose person had another incident in the same role in the
    12 months before it (from the same local day, up to but not including its time)."""
    by_person: dict[Any, list[dt.datetime]] = defaultdict(list)
    for h in history:
        by_person[h.who].append(h.occurred_at)
    repeats = set()
    for p in period:
        earlier = [t for t in by_person[p.who] if t < p.occurred_at]
        if not earlier:
            continue  # most persons: nothing earlier, and no window to work out
        since = months_before(p.occurred_at, REPEAT_WINDOW_MONTHS)
        if any(since <= t for t in earlier):
            repeats.add(p.incident_id)
    return repeats


# --------------------------------------------------------------------------- tables


def _table(
    name: str,
    title: str,
    columns: Sequence[str],
    counts: Mapping[str, Mapping[str, int]],
    *,
    rows_are: str = "month",
    total_column: str | None,
    total_row: bool = True,
    rates: Mapping[str, Any] | None = None,
) -> Table:
    """Suppress ``counts`` (row key → column → count) as one table; ``rates`` maps a rate's
    name to (numerator column, denominator column or ``"total"``)."""
    shown, totals = suppress_table(counts, list(columns))
    table = Table(name, title, rows_are, tuple(columns), total_column)

    def published(values: Mapping[str, Shown], raw: Mapping[str, int]) -> dict[str, Any]:
        out: dict[str, Any] = {"values": {c: values[c] for c in columns}}
        if total_column is not None:
            out["values"][total_column] = values["total"]
        if rates:
            out["rates"] = {
                name: _rate(values, raw, numerator, denominator)
                for name, (numerator, denominator) in rates.items()
            }
        return out

    for key, values in shown.items():
        table.raw[key] = _with_total(counts[key], columns)
        table.rows.append({"row": key, **published(values, table.raw[key])})
    table.raw["total"] = _with_total(
        {c: sum(counts[k].get(c, 0) for k in counts) for c in columns}, columns
    )
    if total_row:
        table.total = published(totals, table.raw["total"])
    return table


def _with_total(raw: Mapping[str, int], columns: Sequence[str]) -> dict[str, int]:
    out = {c: int(raw.get(c, 0)) for c in columns}
    out["total"] = sum(out.values())
    return out


def _rate(values: Mapping[str, Shown], raw: Mapping[str, int], num: str, den: str) -> Rate:
    denominator = raw[den]
    value = round(raw[num] / denominator, 4) if denominator else None
    return derived(value, values[num], values[den])


def _median_hours(durations: Sequence[float]) -> float | None:
    return round(statistics.median(durations) / 3600, 1) if durations else None


@dataclass(frozen=True)
class AreaReport:
    area: str
    start: dt.date
    end: dt.date
    as_of: dt.datetime
    tables: list[Table]
    summary: dict[str, Any]

    def json(self) -> dict[str, Any]:
        return {
            "area": self.area,
            "from": self.start.isoformat(),
            "to": self.end.isoformat(),
            "as_of": self.as_of.astimezone(dt.UTC).isoformat().replace("+00:00", "Z"),
            "suppression": {"threshold": THRESHOLD, "shown_as": HIDDEN},
            "summary": self.summary,
            "tables": [t.json() for t in self.tables],
        }

    def table(self, name: str) -> Table:
        return next(t for t in self.tables if t.name == name)


def area_report(
    session: Session, area: str, start: dt.date, end: dt.date, now: dt.datetime
) -> AreaReport:
    """The report of ``area`` for the local dates [start, end)."""
    begin, finish = period_bounds(start, end)
    months = months_of(start, end)
    repository.begin_report(session)
    incidents = repository.incident_facts(session, area, begin, finish)
    since = months_before(begin, REPEAT_WINDOW_MONTHS)
    repeats = {
        role: repeat_incidents(period, history)
        for role, (period, history) in repository.occurrences(
            session, area, begin, finish, roles=("victim", "perpetrator"), since=since
        ).items()
    }
    flags = repository.flag_facts(session, area, begin, finish)
    reviews = repository.review_facts(session, area, begin, finish)

    victim: dict[str, Counter[str]] = {m: Counter() for m in months}
    child: dict[str, Counter[str]] = {m: Counter() for m in months}
    pattern: dict[str, Counter[str]] = {m: Counter() for m in months}
    children: dict[str, Counter[str]] = {m: Counter() for m in months}
    separation: dict[str, Counter[str]] = {m: Counter() for m in months}
    marac: dict[str, Counter[str]] = {m: Counter() for m in months}
    for incident in incidents:
        month = month_of(incident.occurred_at)
        if month not in victim:
            continue
        victim[month][incident.victim_level] += 1
        child[month].update(incident.child_levels)
        pattern[month]["repeat_victim"] += incident.id in repeats["victim"]
        pattern[month]["repeat_perpetrator"] += incident.id in repeats["perpetrator"]
        pattern[month]["serial_perpetrator"] += incident.serial_perpetrator
        children[month].update(incident.children)
        separation[month]["separation_related"] += incident.separation_related
        if incident.marac_refer:
            repeat = incident.marac_repeat
            marac[month]["repeat_referral" if repeat else "first_referral"] += 1

    flags_by_month: dict[str, Counter[str]] = {m: Counter() for m in months}
    flags_by_agency: dict[str, Counter[str]] = {a: Counter() for a in AGENCIES}
    actioned: dict[str, Counter[str]] = {a: Counter() for a in AGENCIES}
    waits: dict[str, list[float]] = defaultdict(list)
    for flag in flags:
        if flag.status in OPEN_STATUSES:
            state = "open_overdue" if flag.due_at < now else "open_in_time"
        else:
            state = flag.status
        month = month_of(flag.created_at)
        if month in flags_by_month:
            flags_by_month[month][state] += 1
        flags_by_agency.setdefault(flag.agency, Counter())[state] += 1
        if flag.first_action_at is not None:
            actioned.setdefault(flag.agency, Counter())["actioned"] += 1
            wait = (flag.first_action_at - flag.created_at).total_seconds()
            waits[flag.agency].append(max(wait, 0.0))

    review: dict[str, Counter[str]] = {m: Counter() for m in months}
    for r in reviews:
        month = month_of(r.review_due_at)
        if month not in review:
            continue
        if r.erased_at is None:
            review[month]["not_done"] += 1
        elif r.erased_at <= r.review_due_at + REVIEW_GRACE:
            review[month]["done_on_time"] += 1
        else:
            review[month]["done_late"] += 1

    flag_states = ("done", "not_required", "open_overdue", "open_in_time")
    victim_table = _table(
        "victim_levels",
        "Incidents by the victim's risk level",
        VICTIM_LEVELS,
        victim,
        total_column="incidents",
    )
    separation_table = _table(
        "separation",
        "Incidents related to separation",
        ("separation_related",),
        separation,
        total_column=None,
    )
    _share_of_incidents(separation_table, victim_table, "separation_related", "separation_share")
    marac_table = _table(
        "marac",
        "MARAC referrals: first and repeat",
        ("first_referral", "repeat_referral"),
        marac,
        total_column="referrals",
        rates={"repeat_marac_rate": ("repeat_referral", "total")},
    )
    action_table = _table(
        "flag_first_action",
        "Flags acted on, and the median hours from raising to the first action",
        ("actioned",),
        actioned,
        rows_are="agency",
        total_column=None,
    )
    all_waits = [w for ws in waits.values() for w in ws]
    for row in action_table.rows:
        row["rates"] = {
            "median_hours_to_first_action": derived(
                _median_hours(waits.get(row["row"], [])), row["values"]["actioned"]
            )
        }
    assert action_table.total is not None  # noqa: S101 (total_row is on)
    action_table.total["rates"] = {
        "median_hours_to_first_action": derived(
            _median_hours(all_waits), action_table.total["values"]["actioned"]
        )
    }
    tables = [
        victim_table,
        _table(
            "child_levels",
            "Children in incidents by their risk level",
            CHILD_LEVELS,
            child,
            total_column="children",
        ),
        _table(
            "children_affected",
            "Children present, who witnessed, were injured, intervened; present and not spoken to",
            ("present", "witnessed", "injured", "intervened", "not_spoken_to"),
            children,
            total_column=None,
        ),
        _table(
            "repeats",
            "Incidents with a repeat victim or perpetrator (12 months) or a serial perpetrator",
            ("repeat_victim", "repeat_perpetrator", "serial_perpetrator"),
            pattern,
            total_column=None,
        ),
        separation_table,
        marac_table,
        _table(
            "flags_by_month",
            "Flags raised, by what became of them",
            flag_states,
            flags_by_month,
            total_column="raised",
        ),
        # Its total row would repeat the flags by month's: left out (see the module doc).
        _table(
            "flags_by_agency",
            "Flags raised by agency, by what became of them",
            flag_states,
            flags_by_agency,
            rows_are="agency",
            total_column="raised",
            total_row=False,
        ),
        action_table,
        _table(
            "reviews",
            "Retention reviews falling due, and whether done on time",
            ("done_on_time", "done_late", "not_done"),
            review,
            total_column="due",
        ),
    ]
    marac_total = marac_table.total or {}
    summary = {
        "repeat_marac_rate": marac_total.get("rates", {}).get("repeat_marac_rate"),
        "repeat_marac_benchmark": {
            "low": REPEAT_MARAC_BENCHMARK[0],
            "high": REPEAT_MARAC_BENCHMARK[1],
            "source": "SafeLives",
        },
        "separation_share": (separation_table.total or {}).get("rates", {}).get("separation_share"),
        "median_hours_to_first_action": action_table.total["rates"]["median_hours_to_first_action"],
    }
    return AreaReport(area, start, end, now, tables, summary)


def _share_of_incidents(table: Table, incidents: Table, column: str, name: str) -> None:
    """Add ``name`` = ``column`` / incidents to each row of ``table``, from the published
    counts of both tables (withheld when either is hidden)."""
    by_row = {r["row"]: r["values"]["incidents"] for r in incidents.rows}
    targets = [(r, by_row[r["row"]]) for r in table.rows]
    if table.total is not None and incidents.total is not None:
        targets.append((table.total, incidents.total["values"]["incidents"]))
    for row, total in targets:
        count = row["values"][column]
        value = None
        if isinstance(count, int) and isinstance(total, int) and total:
            value = round(count / total, 4)
        row["rates"] = {name: derived(value, count, total)}


CSV_HEADER = ("table", "row", "measure", "value")


def report_csv(report: AreaReport) -> str:
    """The report in long format: one line per published figure (``table,row,measure,
    value``); ``row`` is a month (``YYYY-MM``), an agency or ``total``; a hidden count or a
    withheld rate is ``<5``, a rate with no denominator is empty."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for table in report.tables:
        rows = list(table.rows)
        if table.total is not None:
            rows.append({"row": "total", **table.total})
        for row in rows:
            for group in ("values", "rates"):
                for measure, value in row.get(group, {}).items():
                    writer.writerow(
                        (table.name, row["row"], measure, "" if value is None else value)
                    )
    return buffer.getvalue()
