"""The area report screen in a real browser: its charts drawn, checked with axe-core (WCAG
2.2 AA), and its screenshot. The live server's database is shared with the other browser
tests, so this looks at the page's shape, never at its totals.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from playwright.sync_api import Page, expect

from tests.browser.conftest import Axe, LiveServer
from tests.browser.screens import screenshot, sign_in
from tests.conftest import example_incident

AREA = "E09000018"  # the demo keys' area


def _months_back(today: dt.date, back: int) -> dt.date:
    index = today.year * 12 + today.month - 1 - back
    return dt.date(index // 12, index % 12 + 1, 1)


def test_report_screen_charts(
    live_server: LiveServer, page: Page, axe: Axe, tmp_path: Path
) -> None:
    today = dt.datetime.now(ZoneInfo("Europe/London")).date()
    # Some months busy enough to be published (5), some not (0-2): 24 incidents in all,
    # each an intake over HTTP, so kept few.
    for back in range(1, 13):
        first = _months_back(today, back)
        for n in range(5 if back % 4 == 1 else back % 3):
            body = example_incident()
            when = dt.datetime.combine(first + dt.timedelta(days=n), dt.time(21), dt.UTC)
            body["occurred_at"] = body["reported_at"] = when.isoformat().replace("+00:00", "Z")
            live_server.seed_incident(body, unique=True)

    sign_in(page, live_server.keys["auditor"], "audit")
    start, last = _months_back(today, 12), _months_back(today, 1)
    page.goto(f"/ui/reports?area={AREA}&from={start:%Y-%m}&to={last:%Y-%m}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Area report: {AREA}")
    for chart in ("chart-incidents", "chart-levels", "chart-repeats"):
        svg = page.locator(f"svg#{chart}")
        expect(svg).to_be_visible()
        expect(svg).to_have_attribute("role", "img")
    expect(
        page.locator("svg#chart-incidents rect.bar, svg#chart-incidents rect.suppressed")
    ).to_have_count(12)
    expect(page.locator("svg#chart-incidents rect.bar")).not_to_have_count(0)
    expect(page.locator("svg#chart-repeats rect.band")).to_have_count(1)
    expect(page.get_by_role("link", name="Download CSV")).to_be_visible()
    axe(page)
    screenshot(page, "reports", backend=live_server.backend, tmp_path=tmp_path)
