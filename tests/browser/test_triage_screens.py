"""The triage screens in a real browser: sign-in, the queue, an incident, working a flag,
a conflicting edit from a second browser, and a judgement; axe-core on every screen state
(WCAG 2.2 AA) and keyboard-only use of the queue and the incident screen.

Every test that changes something works on an incident of its own
(``seed_incident(unique=True)``): the live server's database is shared.
"""

from __future__ import annotations

import copy
import re
from pathlib import Path
from typing import Any

from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Axe, LiveServer
from tests.browser.screens import screenshot, second_context, sign_in
from tests.conftest import example_incident

LANDING = {
    "triage": "/ui/queue",
    "agency_csc": "/ui/inbox",
    "agency_school": "/ui/inbox",
    "auditor": "/ui/search",
    "submitter": "/ui/",
    "admin": "/ui/",
}


def test_sign_in_lands_each_role_where_it_works_and_signs_out(
    live_server: LiveServer,
    page: Page,
    browser: Browser,
    blocked_requests: list[str],
    axe: Axe,
    tmp_path: Path,
) -> None:
    page.goto("/ui/queue")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next=/ui/queue$"))
    expect(page.get_by_role("heading", level=1)).to_have_text("Sign in")
    axe(page)
    screenshot(page, "sign-in", backend=live_server.backend, tmp_path=tmp_path)

    page.get_by_label("API key").fill("tri_not-a-real-key")
    page.get_by_role("button", name="Sign in").click()
    summary = page.locator(".error-summary")
    expect(summary).to_be_visible()
    expect(summary).to_contain_text("That key is not valid")
    axe(page)

    page.get_by_label("API key").fill(live_server.keys["triage"])
    page.get_by_role("button", name="Sign in").click()
    expect(page).to_have_url(re.compile(r"/ui/purpose\?next=/ui/queue$"))
    axe(page)
    page.locator("#purpose-triage").check()
    page.locator("#case_reference").fill("no digits here")  # a reference, never a name
    page.get_by_role("button", name="Continue").click()
    expect(page.locator(".error-summary")).to_contain_text("Choose a purpose")
    axe(page)
    page.locator("#purpose-triage").check()
    page.locator("#case_reference").fill("MARAC-2026-0147")
    page.get_by_role("button", name="Continue").click()
    expect(page).to_have_url(re.compile(r"/ui/queue$"))
    expect(page.locator("#queue-filters")).to_be_visible()

    page.get_by_role("button", name="Sign out").click()
    expect(page).to_have_url(re.compile(r"/ui/sign-in$"))
    page.goto("/ui/queue")
    expect(page).to_have_url(re.compile(r"/ui/sign-in\?next="))

    # Each role from the start page: those with screens of personal data are asked for a
    # purpose on the way to theirs (the triage key went all the way above); the others
    # land on the home page, which says where their work is done.
    for role, landing in LANDING.items():
        context = second_context(browser, live_server, blocked_requests)
        try:
            other = context.new_page()
            sign_in(other, live_server.keys[role], purpose=None)
            if landing == "/ui/":
                expect(other).to_have_url(f"{live_server.base_url}/ui/")
                expect(other.locator("main")).to_contain_text(
                    "submits incidents" if role == "submitter" else "Administration"
                )
            else:
                expect(other).to_have_url(f"{live_server.base_url}/ui/purpose?next={landing}")
        finally:
            context.close()


def _low_risk(incident: dict[str, Any]) -> dict[str, Any]:
    """The example made low risk, as tests/ui/test_incident_screen.py has it: the victim
    standard and the child below severe, so that a judgement may raise both."""
    low = copy.deepcopy(incident)
    answers = low["victim_checklist"]["answers"]
    for item in answers:
        answers[item] = "no"
    low["victim_checklist"]["comments"] = {}
    for fact in ("strangulation", "injury_to_victim", "physical_violence", "coercive_control"):
        low["circumstances"][fact] = False
    low["relationship"]["separation"] = {"status": "none"}
    low["victim_history"]["prior_da_incidents_12m"] = 0
    low["officer_assessment"]["victim_perception"] = None
    low["persons"] = [p for p in low["persons"] if p["ref"] != "c2"]
    child = next(p for p in low["persons"] if p["ref"] == "c1")
    child["child"].update(present=False, witnessed=False, intervened=False)
    return low


def _focused(page: Page) -> str:
    return str(page.evaluate("document.activeElement.id"))


def _focused_href(page: Page) -> str:
    return str(page.evaluate("document.activeElement.getAttribute('href') || ''"))


def _tab_to(page: Page, element_id: str, most: int = 300) -> int:
    """Press Tab until the element with this id has the focus; return how many presses."""
    for presses in range(1, most + 1):
        page.keyboard.press("Tab")
        if _focused(page) == element_id:
            return presses
    raise AssertionError(f"{most} presses of Tab never reached #{element_id}")


def test_queue_shows_incidents_keeps_filters_and_works_from_the_keyboard(
    live_server: LiveServer, page: Page, axe: Axe, tmp_path: Path
) -> None:
    seeded = live_server.seed_incident(unique=True)
    incident_id = seeded["incident_id"]
    flag = seeded["flags"][0]
    sign_in(page, live_server.keys["triage"], start="/ui/queue")
    link = page.locator(f"a[href='/ui/incidents/{incident_id}']")
    expect(link).to_have_text(f"Incident {incident_id[:8]}")
    axe(page)
    screenshot(page, "queue", backend=live_server.backend, tmp_path=tmp_path)

    # Filters applied keep their values, and the seeded incident matches its own flag's.
    page.locator("#agency").select_option(flag["agency"])
    page.locator("#type").select_option(flag["type"])
    page.locator("#queue-apply").click()
    expect(page).to_have_url(re.compile(rf"type={flag['type']}"))
    expect(page.locator("#agency")).to_have_value(flag["agency"])
    expect(page.locator("#type")).to_have_value(flag["type"])
    expect(page.locator("#overdue")).not_to_be_checked()
    expect(link).to_be_visible()

    # A filter nothing can match (a school never gets an adult safeguarding flag).
    page.locator("#agency").select_option("school")
    page.locator("#type").select_option("adult_safeguarding")
    page.locator("#overdue").check()
    page.locator("#queue-apply").click()
    expect(page.locator("#queue-empty")).to_contain_text("with these filters")
    expect(page.locator("#agency")).to_have_value("school")
    expect(page.locator("#type")).to_have_value("adult_safeguarding")
    expect(page.locator("#overdue")).to_be_checked()
    axe(page)

    # Keyboard only, from a fresh load: skip link, main, the filters, an incident.
    page.goto("/ui/queue")
    expect(link).to_be_visible()
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert _focused(page) == "main"
    for element_id in ("area", "agency", "type", "overdue", "notice", "queue-apply"):
        page.keyboard.press("Tab")
        assert _focused(page) == element_id
    page.keyboard.press("Tab")
    assert _focused_href(page).startswith("/ui/incidents/")
    for _ in range(60):  # the queue's rows, highest risk first: on to ours
        if _focused_href(page) == f"/ui/incidents/{incident_id}":
            break
        page.keyboard.press("Tab")
        assert _focused_href(page).startswith("/ui/incidents/")
    page.keyboard.press("Enter")
    expect(page).to_have_url(f"{live_server.base_url}/ui/incidents/{incident_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Incident {incident_id[:8]}")


def test_incident_screen_shows_the_assessment_and_a_flag_is_acknowledged_by_keyboard(
    live_server: LiveServer, page: Page, axe: Axe, tmp_path: Path
) -> None:
    seeded = live_server.seed_incident(unique=True)
    incident_id = seeded["incident_id"]
    sign_in(page, live_server.keys["triage"], start=f"/ui/incidents/{incident_id}")
    expect(page.get_by_role("heading", level=1)).to_have_text(f"Incident {incident_id[:8]}")
    victim = seeded["assessment"]["victim"]["level"]
    expect(page.locator("#victim-level")).to_have_text(re.compile(victim, re.IGNORECASE))
    expect(page.locator("#victim-yes-items tbody tr")).not_to_have_count(0)
    expect(page.locator("#marac-criteria")).to_contain_text("Met")
    for child in seeded["assessment"]["children"]:
        ref = child["person_ref"]
        expect(page.locator(f"#child-level-{ref}")).to_contain_text(
            child["level"].replace("_", " "), ignore_case=True
        )
    expect(page.locator("#account-c1")).to_contain_text("pull his stepdad away")
    flags = seeded["flags"]
    expect(page.locator("#flag-list > li")).to_have_count(len(flags))
    for f in flags:
        expect(page.locator(f"#flag-{f['id']}")).to_be_visible()
    axe(page)
    screenshot(page, "incident", backend=live_server.backend, tmp_path=tmp_path)

    # Keyboard only, from a fresh load: the skip link, the page's contents list to its
    # flags, and on to the first flag's first action.
    page.goto(f"/ui/incidents/{incident_id}")
    target = str(page.locator("#flag-list > li").first.get_attribute("id"))[len("flag-") :]
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip-link"
    page.keyboard.press("Enter")
    assert _focused(page) == "main"
    for _ in range(20):
        page.keyboard.press("Tab")
        if _focused_href(page) == "#flags":
            break
    assert _focused_href(page) == "#flags"
    page.keyboard.press("Enter")
    page.keyboard.press("Tab")
    assert _focused_href(page) == f"/ui/flags/{target}"  # the first flag's own page
    page.keyboard.press("Tab")
    assert _focused(page) == f"flag-{target}-acknowledged"
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(rf"/ui/incidents/{incident_id}#flag-actions-{target}$"))
    card = page.locator(f"#flag-{target}")
    expect(card.locator(".tag").first).to_have_text("Acknowledged")
    expect(page.locator(f"#flag-{target}-acknowledged")).to_have_count(0)
    expect(page.locator(f"#flag-{target}-in_progress")).to_be_visible()
    other = next(f["id"] for f in flags if f["id"] != target)
    expect(page.locator(f"#flag-{other} .tag").first).to_have_text("Open")


def _open_details_and_fill(page: Page, field: str, text: str) -> None:
    field_locator = page.locator(field)
    field_locator.locator("xpath=ancestor::details/summary").click()
    field_locator.fill(text)


def test_a_flag_is_worked_end_to_end_and_another_is_not_required(
    live_server: LiveServer, page: Page, axe: Axe, tmp_path: Path
) -> None:
    seeded = live_server.seed_incident(unique=True)
    incident_id = seeded["incident_id"]
    first, second = seeded["flags"][0]["id"], seeded["flags"][1]["id"]
    sign_in(page, live_server.keys["triage"], start=f"/ui/flags/{first}")
    status = page.locator("#flag-status")
    expect(status).to_have_text(re.compile("open", re.IGNORECASE))

    page.locator(f"#flag-{first}-acknowledged").click()
    expect(status).to_have_text(re.compile("acknowledged", re.IGNORECASE))
    page.locator(f"#flag-{first}-in_progress").click()
    expect(status).to_have_text(re.compile("in progress", re.IGNORECASE))
    _open_details_and_fill(page, f"#flag-{first}-assignee", "MASH team 2")
    page.locator(f"#flag-{first}-assign").click()
    expect(page.locator("#flag-assignee")).to_have_text("MASH team 2")
    _open_details_and_fill(page, f"#flag-{first}-note", "Rang the school; callback tomorrow.")
    page.locator(f"#flag-{first}-add-note").click()
    history = page.locator("table.history")
    expect(history).to_contain_text("Rang the school; callback tomorrow.")
    page.locator(f"#flag-{first}-done").click()
    expect(status).to_have_text(re.compile("done", re.IGNORECASE))
    expect(page.locator(f"#flag-{first}-status-form")).to_have_count(0)
    rows = history.locator("tbody tr")
    expect(rows).to_have_count(6)  # raised, three status changes, the assignee, the note
    for text in ("Raised", "Acknowledged", "In progress", "MASH team 2", "Note", "Done"):
        expect(history).to_contain_text(text)
    axe(page)
    screenshot(page, "flag", backend=live_server.backend, tmp_path=tmp_path)

    # The other flag, from the incident page: not required, with a reason.
    page.locator("#flag-incident-link").click()
    expect(page).to_have_url(f"{live_server.base_url}/ui/incidents/{incident_id}")
    _open_details_and_fill(page, f"#flag-{second}-reason", "Already open to the team.")
    page.locator(f"#flag-{second}-not-required").click()
    page.wait_for_url(re.compile(rf"#flag-actions-{second}$"))
    expect(page.locator(f"#flag-{second} .tag").first).to_have_text("Not required")
    reply = live_server.request("GET", f"/v1/flags/{second}", key="triage")
    assert reply.json()["status"] == "not_required"
    assert reply.json()["status_reason"] == "Already open to the team."


def test_a_conflicting_edit_from_a_second_browser_shows_what_changed_and_loses_nothing(
    live_server: LiveServer,
    page: Page,
    browser: Browser,
    blocked_requests: list[str],
    axe: Axe,
    tmp_path: Path,
) -> None:
    seeded = live_server.seed_incident(unique=True)
    fid = seeded["flags"][0]["id"]
    sign_in(page, live_server.keys["triage"], start=f"/ui/flags/{fid}")
    context = second_context(browser, live_server, blocked_requests)
    try:
        stale = context.new_page()
        sign_in(stale, live_server.keys["triage"], start=f"/ui/flags/{fid}")
        expect(stale.locator("#flag-status")).to_have_text(re.compile("open", re.IGNORECASE))

        page.locator(f"#flag-{fid}-acknowledged").click()
        expect(page.locator("#flag-status")).to_have_text(re.compile("acknowledged", re.I))

        stale.locator(f"#flag-{fid}-in_progress").click()
        expect(stale.locator("#conflict-title")).to_have_text("Someone else changed this flag")
        expect(stale.locator("#conflict-status")).to_contain_text("Open")
        expect(stale.locator("#conflict-status")).to_contain_text("Acknowledged")
        expect(stale.locator("#conflict-status")).to_contain_text("Changed")
        expect(stale.locator("#your-change")).to_contain_text("In progress")
        axe(stale)
        screenshot(stale, "flag-conflict", backend=live_server.backend, tmp_path=tmp_path)

        stale.locator("#reapply").click()
        expect(stale).to_have_url(re.compile(rf"/ui/flags/{fid}"))
        expect(stale.locator("#flag-status")).to_have_text(re.compile("in progress", re.I))
        history = stale.locator("table.history")
        expect(history).to_contain_text("Open → Acknowledged")
        expect(history).to_contain_text("Acknowledged → In progress")
    finally:
        context.close()
    events = live_server.request("GET", f"/v1/flags/{fid}", key="triage").json()
    assert events["status"] == "in_progress"


def test_a_judgement_raises_a_level_and_needs_reasons(
    live_server: LiveServer, page: Page, axe: Axe
) -> None:
    seeded = live_server.seed_incident(_low_risk(example_incident()), unique=True)
    incident_id = seeded["incident_id"]
    assert seeded["assessment"]["victim"]["level"] != "high"
    sign_in(page, live_server.keys["triage"], start=f"/ui/incidents/{incident_id}")
    form = page.locator("#judge-v1")
    expect(form).to_be_visible()
    page.locator("#level-v1-high").check()
    form.get_by_role("button", name=re.compile("Record judgement for")).click()
    summary = page.locator("#error-summary")
    expect(summary).to_be_visible()
    expect(page.locator("#level-v1-high")).to_be_checked()  # the choice is kept
    axe(page)
    expect(page.locator("#victim-level")).not_to_have_text(re.compile("high", re.I))

    page.locator("#level-v1-high").check()
    page.locator("#rationale-v1").fill("Disclosed threats to kill since the call; see notes.")
    page.locator("#judge-v1").get_by_role("button", name=re.compile("Record judgement")).click()
    expect(page.locator("#judgement-recorded")).to_contain_text("High")
    expect(page.locator("#victim-level")).to_have_text("High")
    expect(page.locator("#judgements-recorded")).to_contain_text("Disclosed threats to kill")
    expect(page.locator("#judge-v1")).to_have_count(0)  # already the highest level
