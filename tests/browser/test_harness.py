"""The browser harness itself: the live server's keys and seeding, and the guard that
keeps every request on the machine."""

from __future__ import annotations

from playwright.sync_api import Page

from tests.browser.conftest import ONE_BACKEND, LiveServer


def test_seeded_incident_is_visible_to_the_keys_that_may_see_it(live_server: LiveServer) -> None:
    seeded = live_server.seed_incident()
    again = live_server.seed_incident()
    assert again["incident_id"] == seeded["incident_id"]
    assert live_server.seed_incident(unique=True)["incident_id"] != seeded["incident_id"]
    path = f"/v1/incidents/{seeded['incident_id']}"
    assert live_server.request("GET", path, key="triage").status_code == 200
    assert live_server.request("GET", path, key="auditor").status_code == 200
    assert live_server.request("GET", path, key="admin").status_code == 403
    assert live_server.request("GET", path).status_code == 401
    assert set(live_server.keys) == {
        "submitter",
        "triage",
        "agency_csc",
        "agency_school",
        "auditor",
        "partnership",
        "admin",
    }


@ONE_BACKEND  # a page of the test's own: the database plays no part
def test_a_request_off_the_machine_is_blocked_and_recorded(
    live_server: LiveServer, page: Page, blocked_requests: list[str]
) -> None:
    # A page of no policy of ours (the service's own pages would refuse it themselves).
    with page.expect_event("requestfailed") as failed:
        page.set_content('<img alt="" src="https://example.invalid/beacon.png">')
    assert failed.value.url == "https://example.invalid/beacon.png"
    assert blocked_requests == ["https://example.invalid/beacon.png"]
    blocked_requests.clear()  # provoked on purpose: the page fixture would fail the test
