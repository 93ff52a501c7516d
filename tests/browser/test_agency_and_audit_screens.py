"""The search, agency inbox, explanation, audit, person and API docs screens in a real
browser, each state checked with axe-core (WCAG 2.2 AA), and their screenshots.

A few long scenarios rather than many short ones, to keep the browser suite quick. The
live server's database is shared with the other browser tests: each scenario seeds an
incident of its own (``unique=True``) and looks for that one, never at totals.
"""

from __future__ import annotations

import re
import secrets
import uuid
from pathlib import Path
from typing import Any

from playwright.sync_api import Page, expect

from tests.browser.conftest import ONE_BACKEND, Axe, LiveServer
from tests.browser.screens import screenshot, sign_in
from tests.conftest import example_incident

EXAMPLE = example_incident()
PERSONS = {p["ref"]: p for p in EXAMPLE["persons"]}
VICTIM = PERSONS["v1"]
PERPETRATOR = PERSONS["p1"]
SCHOOL_URN = PERSONS["c1"]["child"]["school"]["urn"]  # the demo school key's school
SHA256 = re.compile(r"^[0-9a-f]{64}$")


def _pnc(person: dict[str, Any]) -> str:
    return str(next(i["value"] for i in person["identifiers"] if i["scheme"] == "pnc"))


def _person_ids(live_server: LiveServer, incident_id: str) -> dict[str, str]:
    record = live_server.request("GET", f"/v1/incidents/{incident_id}", key="triage")
    assert record.status_code == 200, record.status_code
    return {p["ref"]: p["person_id"] for p in record.json()["persons"]}


def _find_in_inbox(page: Page, flag_id: str, *, pages: int = 10) -> None:
    """Walk the inbox's pages (the shared database may hold many flags) to the flag."""
    page.goto("/ui/inbox")
    expect(page.locator("#inbox-title")).to_be_visible()
    for _ in range(pages):
        if page.locator(f"#flag-{flag_id}").count():
            return
        following = page.locator("#inbox-next")
        assert following.count(), f"flag {flag_id} not in the inbox"
        following.click()
    raise AssertionError(f"flag {flag_id} not in the first {pages} pages of the inbox")


def test_search_as_triage_and_a_persons_chronology(
    live_server: LiveServer, page: Page, axe: Axe, tmp_path: Path
) -> None:
    body = example_incident()
    reference = body["source"]["reference"] = f"SEARCH-{uuid.uuid4().hex[:12]}"
    incident_id = live_server.seed_incident(body)["incident_id"]
    person_ids = _person_ids(live_server, incident_id)

    sign_in(page, live_server.keys["triage"], "triage")
    page.goto("/ui/search")
    expect(page.locator("#search-form")).to_be_visible()
    axe(page)

    # By the source reference, with a purpose of its own chosen in the form.
    page.locator("#purpose").select_option("investigation")
    page.locator("#case_reference").fill("OP-2026-0042")
    page.locator("#source_reference").fill(reference)
    page.locator("#search-button").click()
    expect(page.locator("#results")).to_be_visible()
    assert "purpose=investigation" in page.url
    rows = page.locator("#incident-results tbody tr")
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(reference)
    expect(page.locator("#persons-heading")).to_have_count(0)  # a reference finds incidents
    link = rows.first.locator(f"a[href='/ui/incidents/{incident_id}']")
    expect(link).to_be_visible()

    # By PNC: the victim, and the incidents she is in (ours among them, maybe not first).
    page.locator("#new-search").click()
    page.locator("#pnc").fill(_pnc(VICTIM))
    page.locator("#search-button").click()
    victim_link = page.locator(f"#person-results a[href='/ui/persons/{person_ids['v1']}']")
    expect(victim_link).to_be_visible()
    expect(page.locator("#incident-results a[href^='/ui/incidents/']").first).to_be_visible()

    # By name and date of birth: the perpetrator, as the results screenshot.
    page.locator("#new-search").click()
    page.locator("#name").fill(f"{PERPETRATOR['name']['given']} {PERPETRATOR['name']['family']}")
    page.locator("#date_of_birth").fill(PERPETRATOR["date_of_birth"])
    page.locator("#search-button").click()
    expect(page.locator("#results")).to_be_visible()
    person_link = page.locator(f"#person-results a[href='/ui/persons/{person_ids['p1']}']")
    expect(person_link).to_be_visible()
    expect(page.locator("#incident-results tbody tr").first).to_contain_text("Perpetrator")
    axe(page)
    screenshot(page, "search", backend=live_server.backend, tmp_path=tmp_path)

    # Nothing found: an invented name nobody has.
    page.locator("#new-search").click()
    page.locator("#name").fill("Nobody Inventedname")
    page.locator("#date_of_birth").fill("1970-01-01")
    page.locator("#search-button").click()
    expect(page.locator("#no-persons")).to_be_visible()
    expect(page.locator("#no-incidents")).to_be_visible()

    # A name without a date of birth: the error summary, linked to the field.
    page.locator("#new-search").click()
    page.locator("#name").fill("Amira Hale")
    page.locator("#search-button").click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(summary.locator("a[href='#date_of_birth']")).to_be_visible()
    expect(page).to_have_title(re.compile(r"^Error: "))
    axe(page)

    # The person's link leads to their chronology; so does the incident page's link (the
    # perpetrator's, with the distinct victims).
    page.goto(f"/ui/search?pnc={_pnc(VICTIM)}&purpose=triage")
    page.locator(f"#person-results a[href='/ui/persons/{person_ids['v1']}']").click()
    expect(page.locator("#person-facts")).to_be_visible()
    page.goto(f"/ui/incidents/{incident_id}")
    page.locator("#chronology-p1").click()
    expect(page).to_have_url(re.compile(rf"/ui/persons/{person_ids['p1']}$"))
    expect(page.locator("#person-facts")).to_be_visible()
    expect(page.locator(f"#timeline a[href='/ui/incidents/{incident_id}']")).to_be_visible()
    expect(page.locator("#distinct-victims")).to_be_attached()
    axe(page)
    screenshot(page, "person", backend=live_server.backend, tmp_path=tmp_path)


def test_agency_inboxes_see_their_own_flags_only(
    live_server: LiveServer, page: Page, axe: Axe, tmp_path: Path
) -> None:
    seeded = live_server.seed_incident(unique=True)
    incident_id = seeded["incident_id"]
    school_flag = next(
        f for f in seeded["flags"] if f["agency"] == "school" and f["subject_ref"] == "c1"
    )
    fid = school_flag["id"]
    csc_flag = next(f for f in seeded["flags"] if f["agency"] == "csc")

    # The child's school: the flag is in its inbox; acknowledge it, then complete it.
    sign_in(page, live_server.keys["agency_school"], "safeguarding_referral")
    _find_in_inbox(page, fid)
    card = page.locator(f"#flag-{fid}")
    expect(card).to_contain_text(PERSONS["c1"]["name"]["given"])
    expect(card.locator(f"a[href='/ui/incidents/{incident_id}']")).to_be_visible()
    axe(page)
    screenshot(page, "inbox", backend=live_server.backend, tmp_path=tmp_path)
    page.locator(f"#flag-{fid}-acknowledged").click()
    expect(page.locator(f"#flag-{fid} dd .tag")).to_have_text("Acknowledged")
    expect(page.locator(f"#flag-{fid}-acknowledged")).to_have_count(0)
    page.locator(f"#flag-{fid}-done").click()
    expect(page.locator("#inbox-title")).to_be_visible()
    expect(page.locator(f"#flag-{fid}-done")).to_have_count(0)
    page.goto(f"/ui/flags/{fid}")
    expect(page.locator("#flag-status")).to_contain_text("Done")

    # Another school, made by the admin: none of that child's flags, and 404 for them.
    other_urn = str(10_000_000 + secrets.randbelow(90_000_000))  # a school of this test's own
    assert other_urn != SCHOOL_URN
    made = live_server.request(
        "POST",
        "/v1/admin/keys",
        key="admin",
        json={
            "role": "agency",
            "agency": "school",
            "areas": [EXAMPLE["area"]],
            "schools": [other_urn],
            "label": "browser tests: another school",
        },
    )
    assert made.status_code == 201, made.status_code
    page.context.clear_cookies()
    sign_in(page, made.json()["secret"], "safeguarding_referral")
    page.goto("/ui/inbox")
    expect(page.locator("#inbox-empty")).to_be_visible()
    for flag in seeded["flags"]:
        expect(page.locator(f"#flag-{flag['id']}")).to_have_count(0)
    axe(page)
    for path in (f"/ui/flags/{fid}", f"/ui/incidents/{incident_id}"):
        response = page.goto(path)
        assert response is not None
        assert response.status == 404, path
        expect(page.get_by_role("heading", level=1)).to_have_text(re.compile("not found", re.I))
    axe(page)

    # Children's social care sees its own flag of the incident.
    page.context.clear_cookies()
    sign_in(page, live_server.keys["agency_csc"], "safeguarding_referral")
    _find_in_inbox(page, csc_flag["id"])
    expect(page.locator(f"#flag-{fid}")).to_have_count(0)


def test_auditor_reproduces_a_score_and_verifies_the_audit_chain(
    live_server: LiveServer, page: Page, axe: Axe, tmp_path: Path
) -> None:
    seeded = live_server.seed_incident(unique=True)
    incident_id = seeded["incident_id"]
    assessment_id = seeded["assessment"]["id"]

    sign_in(page, live_server.keys["auditor"], "audit")
    page.goto(f"/ui/incidents/{incident_id}/assessments")
    versions = page.locator("#assessment-versions")
    expect(versions).to_be_visible()
    versions.locator(f"a[href='/ui/assessments/{assessment_id}']").first.click()
    expect(page.locator("#assessment-id")).to_have_text(assessment_id)
    expect(page.locator("#victim-items tbody tr").first).to_be_visible()
    expect(page.locator("#item-threat_to_kill")).to_be_visible()
    hashes = page.locator("#definitions-table tbody code.hash").all_inner_texts()
    assert hashes
    assert all(SHA256.match(h.strip()) for h in hashes), hashes
    page.locator("#reproduce-button").click()
    result = page.locator("#reproduction-result")
    expect(result).to_have_attribute("data-identical", "true")
    axe(page)
    screenshot(page, "explanation", backend=live_server.backend, tmp_path=tmp_path)

    # The audit log: every event, then the incident's own, then the chain verified.
    page.goto("/ui/audit")
    expect(page.locator("#audit-events tbody tr").first).to_be_visible()
    page.locator("#record").fill(incident_id)
    page.locator("#apply-audit-filters").click()
    events = page.locator("#audit-events tbody tr")
    expect(events.first).to_be_visible()
    assert events.count() >= 1
    for row in events.all():
        expect(row).to_contain_text(incident_id)
    expect(page.locator("#clear-audit-filters")).to_be_visible()
    axe(page)
    screenshot(page, "audit", backend=live_server.backend, tmp_path=tmp_path)
    page.locator("#verify-chain").click()
    expect(page.locator("#verify-result")).to_have_attribute("data-ok", "true")
    expect(page.locator("#verified-seq")).to_have_text(re.compile(r"^\d+$"))
    axe(page)
    screenshot(page, "audit-verify", backend=live_server.backend, tmp_path=tmp_path)


@ONE_BACKEND  # the docs page reads nothing from the database
def test_api_docs_screenshot(live_server: LiveServer, page: Page, tmp_path: Path) -> None:
    page.goto("/docs")
    expect(page.locator("#operations-incidents-create_incident")).to_be_visible()
    screenshot(page, "api-docs", backend=live_server.backend, tmp_path=tmp_path)
