"""The area report screen: ``GET /v1/reports/areas/{area}`` as tables and server-drawn charts.

Aggregates only (no person, no incident), so no purpose is asked for; the API's own audit
event records each read. Every figure on the page is the API's: the charts draw the
published counts and rates, and a count the API withheld (``<5``) stays withheld — a
hatched marker in a chart, ``<5`` in a table. The one figure the page works out itself,
the share of incidents with a repeat victim, is made from two published counts and is
withheld when either is.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import Response
from markupsafe import Markup

from app.ui import charts
from app.ui.charts import HIDDEN, HIDDEN_WORDS, Series, month_words
from app.ui.names import agency_name
from app.ui.web import CurrentUser, ScreenError, api, render, words

router = APIRouter(prefix="/ui", include_in_schema=False)

LONDON = ZoneInfo("Europe/London")
AREA = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
MONTH = re.compile(r"^(\d{4})-(\d{2})$")
MAX_MONTHS = 60
LEVELS = (
    Series("Standard", (), fill=charts.PAPER),
    Series("Medium", (), fill=charts.YELLOW, dash="4 2"),
    Series("High", (), fill=charts.ORANGE, stroke_width=3),
)


def _month(value: str | None) -> dt.date | None:
    found = MONTH.match(value or "")
    if not found or not 1 <= int(found[2]) <= 12:
        return None
    return dt.date(int(found[1]), int(found[2]), 1)


def _next_month(day: dt.date) -> dt.date:
    return dt.date(day.year + day.month // 12, day.month % 12 + 1, 1)


def _default_period() -> tuple[dt.date, dt.date]:
    """The twelve whole months before this one: (first month, last month)."""
    this = dt.datetime.now(LONDON).date().replace(day=1)
    last = dt.date(this.year - (this.month == 1), (this.month - 2) % 12 + 1, 1)
    return this.replace(year=this.year - 1), last


class _Choice:
    """The form's area and months, checked: ``errors`` says what is wrong, in our words."""

    def __init__(
        self, user: CurrentUser, area: str | None, start: str | None, end: str | None
    ) -> None:
        self.areas = sorted(a for a in user.principal.areas if a != "*")
        self.errors: list[tuple[str, str]] = []
        default_from, default_to = _default_period()
        self.area = area if area is not None else (self.areas[0] if self.areas else "")
        self.start_text = start if start is not None else default_from.strftime("%Y-%m")
        self.end_text = end if end is not None else default_to.strftime("%Y-%m")
        if self.area and not AREA.match(self.area):
            self.errors.append(("area", "Enter an area code (letters, digits and . _ : -)."))
            self.area = ""
        first, last = _month(self.start_text), _month(self.end_text)
        if first is None:
            self.errors.append(("from", "Enter the first month as a year and month, 2026-01."))
        if last is None:
            self.errors.append(("to", "Enter the last month as a year and month, 2026-12."))
        self.start = first or default_from
        self.end = _next_month(last or default_to)
        if first and last:
            months = (last.year - first.year) * 12 + last.month - first.month + 1
            if months < 1:
                self.errors.append(("to", "The last month must not be before the first."))
            elif months > MAX_MONTHS:
                self.errors.append(("to", "A report spans at most five years (60 months)."))

    @property
    def ready(self) -> bool:
        return bool(self.area) and not self.errors

    def query(self, **extra: str) -> dict[str, str]:
        return {"from": self.start.isoformat(), "to": self.end.isoformat(), **extra}

    def context(self) -> dict[str, Any]:
        return {
            "areas": self.areas,
            "area": self.area,
            "from_month": self.start_text,
            "to_month": self.end_text,
            "errors": self.errors,
        }


def _choice(
    user: CurrentUser,
    area: Annotated[str | None, Query(max_length=64)] = None,
    start: Annotated[str | None, Query(alias="from", max_length=16)] = None,
    end: Annotated[str | None, Query(alias="to", max_length=16)] = None,
) -> _Choice:
    return _Choice(user, area, start, end)


Choice = Annotated[_Choice, Depends(_choice)]


@router.get("/reports")
async def report_page(request: Request, user: CurrentUser, choice: Choice) -> Response:
    context = choice.context()
    if not choice.ready:
        status = 400 if choice.errors else 200
        if user.principal.role not in ("auditor", "partnership"):
            raise ScreenError(403, "You cannot read area reports")
        return render(request, "reports.html", context, status_code=status)
    reply = await api(request, user).get(
        f"/v1/reports/areas/{quote(choice.area, safe='')}", choice.query()
    )
    if not reply.ok:
        raise ScreenError.of(reply)
    report = reply.json()
    context.update(_report_context(report))
    context["csv_href"] = "/ui/reports/csv?" + "&".join(
        f"{k}={quote(v, safe='')}"
        for k, v in {"area": choice.area, "from": choice.start_text, "to": choice.end_text}.items()
    )
    return render(request, "reports.html", context)


@router.get("/reports/csv")
async def report_csv(request: Request, user: CurrentUser, choice: Choice) -> Response:
    """The API's CSV of the same report, as a download named after the area and period."""
    if not choice.ready:
        raise ScreenError(400, "Choose an area and a period first")
    reply = await api(request, user).get(
        f"/v1/reports/areas/{quote(choice.area, safe='')}", choice.query(format="csv")
    )
    if not reply.ok:
        raise ScreenError.of(reply)
    last = choice.end - dt.timedelta(days=1)
    name = f"report-{choice.area}-{choice.start:%Y-%m}-to-{last:%Y-%m}.csv"
    return Response(
        reply.body,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


# --------------------------------------------------------------------------- the page


def _count_words(value: object) -> str:
    return "hidden" if value == HIDDEN else f"{value:,}" if isinstance(value, int) else "—"


def _rate_words(value: object) -> str:
    if value == HIDDEN:
        return "withheld"
    if isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    return "no base"


def _share(count: object, total: object) -> float | str | None:
    """count ÷ total from two published counts; withheld when either is."""
    if count == HIDDEN or total == HIDDEN:
        return HIDDEN
    if isinstance(count, int) and isinstance(total, int) and total:
        return round(count / total, 4)
    return None


def _report_context(report: dict[str, Any]) -> dict[str, Any]:
    tables = {t["name"]: t for t in report["tables"]}
    victim = tables["victim_levels"]
    months = [row["row"] for row in victim["rows"]]
    span = f"{month_words(months[0])} to {month_words(months[-1])}"
    incidents = [row["values"]["incidents"] for row in victim["rows"]]
    repeats = {row["row"]: row["values"] for row in tables["repeats"]["rows"]}
    marac = [(row["rates"] or {}).get("repeat_marac_rate") for row in tables["marac"]["rows"]]
    repeat_share = [
        _share(repeats[m]["repeat_victim"], n) for m, n in zip(months, incidents, strict=True)
    ]
    levels = [
        Series(
            s.name,
            [row["values"][code] for row in victim["rows"]],
            s.fill,
            s.dash,
            stroke_width=s.stroke_width,
        )
        for s, code in zip(LEVELS, ("standard", "medium", "high"), strict=True)
    ]
    area = report["area"]
    benchmark = report["summary"]["repeat_marac_benchmark"]
    band = (float(benchmark["low"]), float(benchmark["high"]))
    band_label = f"SafeLives benchmark {band[0] * 100:.0f} to {band[1] * 100:.0f}%"
    rate_series = [
        Series("Repeat-MARAC rate", marac, fill=charts.VERMILLION, marker="square"),
        Series("Repeat-victim share", repeat_share, fill=charts.PAPER, dash="6 4"),
    ]
    chart_list = [
        {
            "id": "chart-incidents",
            "heading": "Incidents per month",
            "svg": charts.bar_chart(
                "chart-incidents",
                f"Incidents per month in {area}, {span}",
                _describe_counts("Incidents", months, incidents),
                months,
                Series("Incidents", incidents, fill=charts.ORANGE),
            ),
            "columns": ["Incidents"],
            "rows": [(month_words(m), [_cell(n)]) for m, n in zip(months, incidents, strict=True)],
        },
        {
            "id": "chart-levels",
            "heading": "Incidents by the victim's risk level",
            "svg": charts.stacked_chart(
                "chart-levels",
                f"Incidents by the victim's risk level per month in {area}, {span}",
                _describe_levels(months, levels, victim.get("total")),
                months,
                levels,
            ),
            "columns": [s.name for s in levels],
            "rows": [
                (month_words(m), [_cell(s.values[i]) for s in levels]) for i, m in enumerate(months)
            ],
        },
        {
            "id": "chart-repeats",
            "heading": "Repeat victims and repeat MARAC referrals",
            "svg": charts.rate_chart(
                "chart-repeats",
                f"Repeat-victim share and repeat-MARAC rate per month in {area}, {span}",
                _describe_rates(months, rate_series, band_label),
                months,
                rate_series,
                band=band,
                band_label=band_label,
            ),
            "columns": [s.name for s in rate_series],
            "rows": [
                (month_words(m), [_rate_cell(s.values[i]) for s in rate_series])
                for i, m in enumerate(months)
            ],
        },
    ]
    return {
        "report": report,
        "months_label": span,
        "charts": chart_list,
        "tables": [_table_view(t) for t in report["tables"]],
        "summary": report["summary"],
        "band_label": band_label,
    }


def _cell(value: object) -> Markup | str:
    if value == HIDDEN:
        return Markup('<span class="hidden-count">&lt;5</span>')
    return f"{value:,}" if isinstance(value, int) else "—"


def _rate_cell(value: object) -> Markup | str:
    if value == HIDDEN:
        return Markup('<span class="hidden-count">&lt;5</span>')
    if isinstance(value, int | float):
        return f"{value * 100:.1f}%"
    return "—"


def _describe_counts(name: str, months: list[str], values: list[Any]) -> str:
    shown = [(v, m) for m, v in zip(months, values, strict=True) if isinstance(v, int)]
    hidden = sum(v == HIDDEN for v in values)
    parts = [f"A bar for each of {len(months)} months."]
    if shown:
        high, low = max(shown), min(shown)
        parts.append(
            f"Highest: {high[0]:,} in {month_words(high[1])}; "
            f"lowest shown: {low[0]:,} in {month_words(low[1])}."
        )
    if hidden:
        parts.append(f"Hidden in {hidden} months ({HIDDEN_WORDS}), drawn as hatched markers.")
    parts.append(f"The table after the chart gives {name.lower()} for every month.")
    return " ".join(parts)


def _describe_levels(months: list[str], levels: list[Series], total: Any) -> str:
    parts = [
        f"A stacked bar for each of {len(months)} months: standard at the bottom, medium "
        "above it, high on top."
    ]
    if total:
        values = total["values"]
        parts.append(
            "Over the period: "
            + ", ".join(f"{_count_words(values[c])} {c}" for c in ("standard", "medium", "high"))
            + f" ({_count_words(values['incidents'])} incidents)."
        )
    if any(v == HIDDEN for s in levels for v in s.values):
        parts.append(f"Hidden counts ({HIDDEN_WORDS}) are drawn as hatched markers, not to scale.")
    return " ".join(parts)


def _describe_rates(months: list[str], series: list[Series], band_label: str) -> str:
    parts = [f"Points for each of {len(months)} months, as a percentage; {band_label}."]
    for s in series:
        shown = [v for v in s.values if isinstance(v, int | float)]
        within = ""
        if shown:
            within = (
                f" from {min(shown) * 100:.1f}% to {max(shown) * 100:.1f}% in {len(shown)} months"
            )
        hidden = sum(v == HIDDEN for v in s.values)
        withheld = f", withheld in {hidden} (made from a hidden count)" if hidden else ""
        parts.append(f"{s.name}{within or ' not available'}{withheld}.")
    return " ".join(parts)


def _table_view(table: dict[str, Any]) -> dict[str, Any]:
    """A report table as rows of labelled cells, in the API's order."""
    columns = list(table["columns"])
    if table["total_column"]:
        columns.append(table["total_column"])
    rates = sorted({k for row in table["rows"] for k in (row.get("rates") or {})})
    rows = list(table["rows"])
    if table["total"] is not None:
        rows.append({"row": "total", **table["total"]})

    def label(key: str) -> str:
        if key == "total":
            return "Total"
        if table["rows_are"] == "month":
            return month_words(key)
        return agency_name(key)

    return {
        "name": table["name"],
        "title": table["title"],
        "rows_are": "Month" if table["rows_are"] == "month" else "Agency",
        "headings": [words(c) for c in columns] + [_rate_heading(r) for r in rates],
        "measures": columns + rates,
        "rows": [
            {
                "key": row["row"],
                "label": label(row["row"]),
                "cells": [_cell(row["values"][c]) for c in columns]
                + [_rate_value(r, (row.get("rates") or {}).get(r)) for r in rates],
            }
            for row in rows
        ],
    }


def _rate_heading(name: str) -> str:
    return "Median hours to first action" if name.startswith("median") else words(name)


def _rate_value(name: str, value: object) -> Markup | str:
    if name.startswith("median") and isinstance(value, int | float):
        return f"{value:.1f}"
    return _rate_cell(value)
