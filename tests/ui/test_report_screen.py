"""The area report screen: the API's report as tables and server-drawn SVG charts, the CSV
download, and who may see which area. All data is invented test data (tests/data/README.md).
"""

from __future__ import annotations

import datetime as dt
import html
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from typing import Any

from fastapi.testclient import TestClient

from app.ui.charts import HIDDEN_WORDS, month_words
from tests.conftest import KeyMaker
from tests.flags.api_helpers import AREA_A, AREA_B
from tests.reports.test_area_report import _month_starts, seed_three_months
from tests.ui.conftest import SignIn

SVG = "{http://www.w3.org/2000/svg}"


class _Cells(HTMLParser):
    """The report tables' cells: (table, row, measure) → the text shown."""

    def __init__(self) -> None:
        super().__init__()
        self.cells: dict[tuple[str, str, str], str] = {}
        self.table = self.row = self.measure = ""
        self.text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table":
            self.table = a.get("data-table") or ""
        elif tag == "tr":
            self.row = a.get("data-row") or ""
        elif tag == "td" and self.table and a.get("data-measure"):
            self.measure, self.text = a["data-measure"] or "", []

    def handle_data(self, data: str) -> None:
        if self.text is not None:
            self.text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "td" and self.text is not None:
            self.cells[(self.table, self.row, self.measure)] = "".join(self.text).strip()
            self.text = None


def _shown(measure: str, value: Any) -> str:
    if value == "<5":
        return "<5"
    if value is None:
        return "—"
    if measure.startswith("median"):
        return f"{value:.1f}"
    if isinstance(value, float) or measure.endswith(("_rate", "_share")):
        return f"{value * 100:.1f}%"
    return f"{value:,}"


def _svgs(page: str) -> dict[str, ET.Element]:
    found = re.findall(r"<svg\b.*?</svg>", page, flags=re.S)
    # Our own page's markup, not untrusted input.
    return {(svg := ET.fromstring(text)).get("id", ""): svg for text in found}  # noqa: S314


def _titles(element: ET.Element) -> list[str]:
    return [t.text or "" for t in element.iter(f"{SVG}title")]


def test_report_screen_charts_tables_and_csv(
    client: TestClient, make_key: KeyMaker, sign_in: SignIn
) -> None:
    seed_three_months(client, make_key("submitter"))
    first, second, third, _ = _month_starts()
    months = [d.strftime("%Y-%m") for d in (first, second, third)]
    sign_in("partnership", areas=[AREA_A])

    # A partnership's home is its reports; the form offers its own areas.
    home = client.get("/ui/", follow_redirects=False)
    assert home.status_code == 303
    assert home.headers["location"] == "/ui/reports"
    form = client.get("/ui/reports?from=2020-01&to=2020-01")
    assert form.status_code == 200
    assert f'<option value="{AREA_A}" selected>' in form.text
    assert 'href="/ui/reports" aria-current="page"' in form.text

    query = f"area={AREA_A}&from={months[0]}&to={months[2]}"
    page = client.get(f"/ui/reports?{query}")
    assert page.status_code == 200, page.text
    assert 'style="' not in page.text  # the CSP allows no inline style
    api = client.get(
        f"/v1/reports/areas/{AREA_A}",
        params={"from": first.isoformat(), "to": _month_starts()[3].isoformat()},
        headers=make_key("partnership", areas=[AREA_A]),
    )
    assert api.status_code == 200, api.text
    report = api.json()
    tables = {t["name"]: t for t in report["tables"]}
    victim = {row["row"]: row["values"] for row in tables["victim_levels"]["rows"]}
    assert victim[months[2]]["incidents"] == "<5"  # two incidents: hidden
    assert victim[months[0]]["incidents"] == 7

    svgs = _svgs(page.text)
    assert set(svgs) == {"chart-incidents", "chart-levels", "chart-repeats"}
    for svg in svgs.values():
        assert svg.get("role") == "img"
        assert svg.get("aria-labelledby") == f"{svg.get('id')}-title {svg.get('id')}-desc"
        assert svg.find(f"{SVG}title") is not None
        assert svg.find(f"{SVG}desc") is not None
        markup = ET.tostring(svg, encoding="unicode")
        assert "&lt;5" not in markup
        assert "style=" not in markup
        # A hidden month is a hatched marker saying why, never a number.
        hidden_month = month_words(months[2])
        for title in _titles(svg):
            if title.startswith(hidden_month) and svg.get("id") != "chart-repeats":
                assert title.endswith(HIDDEN_WORDS), title

    incidents = svgs["chart-incidents"]
    title = incidents.find(f"{SVG}title")
    assert title is not None
    assert title.text is not None
    assert title.text.startswith(f"Incidents per month in {AREA_A}, {month_words(months[0])}")
    desc = incidents.find(f"{SVG}desc")
    assert desc is not None
    assert desc.text is not None
    assert "A bar for each of 3 months" in desc.text
    assert f"Highest: 7 in {month_words(months[0])}" in desc.text
    n_hidden = [victim[m]["incidents"] for m in months].count("<5")
    assert f"Hidden in {n_hidden} months ({HIDDEN_WORDS})" in desc.text
    bars = incidents.findall(f".//{SVG}rect[@class='bar']")
    hidden = incidents.findall(f".//{SVG}rect[@class='suppressed']")
    assert len(bars) + len(hidden) == 3
    assert len(hidden) == n_hidden
    assert [_titles(b) for b in bars] == [
        [f"{month_words(m)}: {victim[m]['incidents']}"]
        for m in months
        if victim[m]["incidents"] != "<5"
    ]
    assert HIDDEN_WORDS in "".join(incidents.itertext())  # the legend

    levels = svgs["chart-levels"]
    assert len(levels.findall(f".//{SVG}g[@class='stack']")) == 3
    levels_desc = levels.find(f"{SVG}desc")
    assert levels_desc is not None
    assert "standard at the bottom" in (levels_desc.text or "")
    legend = " ".join(levels.itertext())
    assert "Standard" in legend
    assert "Medium" in legend
    assert "High" in legend

    rates = svgs["chart-repeats"]
    band = rates.findall(f".//{SVG}rect[@class='band']")
    assert len(band) == 1
    assert _titles(band[0]) == ["SafeLives benchmark 28 to 40%"]
    points = [t for p in rates.findall(f".//{SVG}g[@class='point']") for t in _titles(p)]
    markers = [t for r in rates.findall(f".//{SVG}rect[@class='suppressed']") for t in _titles(r)]
    marac = {row["row"]: row["rates"]["repeat_marac_rate"] for row in tables["marac"]["rows"]}
    for month, rate in marac.items():
        name = month_words(month)
        drawn = [t for t in points if t.startswith(f"{name}, Repeat-MARAC rate")]
        if isinstance(rate, float):
            assert drawn == [f"{name}, Repeat-MARAC rate: {rate * 100:.1f}%"]
        else:
            assert drawn == []
            marker = f"{name}, Repeat-MARAC rate: {HIDDEN_WORDS}"
            assert (marker in markers) == (rate == "<5")
    repeats = {row["row"]: row["values"] for row in tables["repeats"]["rows"]}
    share = [t for t in points if t.startswith(f"{month_words(months[1])}, Repeat-victim")]
    if isinstance(repeats[months[1]]["repeat_victim"], int):
        assert share == [f"{month_words(months[1])}, Repeat-victim share: 100.0%"]

    # Every table's figures as the API publishes them.
    parser = _Cells()
    parser.feed(page.text)
    checked = 0
    for table in report["tables"]:
        rows = [*table["rows"]] + ([{"row": "total", **table["total"]}] if table["total"] else [])
        for row in rows:
            for group in ("values", "rates"):
                for measure, value in (row.get(group) or {}).items():
                    cell = parser.cells[(table["name"], row["row"], measure)]
                    assert html.unescape(cell) == _shown(measure, value), (
                        table["name"],
                        row["row"],
                        measure,
                    )
                    checked += 1
    assert checked > 100
    assert "Small numbers are hidden" in page.text

    # The CSV, as the API gives it, named after the area and months.
    csv_link = f"/ui/reports/csv?{query}"
    assert f'href="{csv_link.replace("&", "&amp;")}"' in page.text
    download = client.get(csv_link)
    assert download.status_code == 200
    assert download.headers["content-type"] == "text/csv; charset=utf-8"
    assert download.headers["content-disposition"] == (
        f'attachment; filename="report-{AREA_A}-{months[0]}-to-{months[2]}.csv"'
    )
    api_csv = client.get(
        f"/v1/reports/areas/{AREA_A}",
        params={"from": first.isoformat(), "to": _month_starts()[3].isoformat(), "format": "csv"},
        headers=make_key("auditor"),
    )
    assert download.content == api_csv.content


def test_report_screen_refuses_other_roles_and_areas(
    client: TestClient, make_key: KeyMaker, sign_in: SignIn
) -> None:
    month = dt.date.today().strftime("%Y-%m")
    query = f"area={AREA_A}&from={month}&to={month}"
    sign_in("triage", areas=[AREA_A])
    for path in ("/ui/reports", f"/ui/reports?{query}", f"/ui/reports/csv?{query}"):
        assert client.get(path).status_code == 403, path
    client.cookies.clear()

    sign_in("partnership", areas=[AREA_B])
    other = client.get(f"/ui/reports?{query}")
    assert other.status_code == 404
    assert "No report for this area is available to you." in other.text
    assert client.get(f"/ui/reports/csv?{query}").status_code == 404
    own = client.get(f"/ui/reports?area={AREA_B}&from={month}&to={month}")
    assert own.status_code == 200
    bad = client.get(f"/ui/reports?area={AREA_B}&from=2026-13&to=nonsense")
    assert bad.status_code == 400
    assert "There is a problem" in bad.text
    assert 'href="#from"' in bad.text
    client.cookies.clear()

    sign_in("auditor")
    assert client.get("/ui/reports").status_code == 200  # the form, an area to enter
    assert client.get(f"/ui/reports?{query}").status_code == 200
