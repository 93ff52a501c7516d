"""The triage queue screen's filters (agency, flag type, overdue), kept by the refresh.

Incidents dated in 2020 have every flag long overdue; in 2030 none is due yet. All
invented (tests/data/README.md).
"""

from __future__ import annotations

from fastapi.testclient import TestClient

from tests.conftest import KeyMaker
from tests.flags.api_helpers import incident_at, post_incident
from tests.flags.test_queue import victim_only
from tests.ui.conftest import SignIn


def test_queue_screen_filters_by_agency_type_and_overdue(
    client: TestClient, submitter: dict[str, str], sign_in: SignIn
) -> None:
    overdue_family = post_incident(client, submitter, incident_at("2020-06-01T10:00:00Z"))
    future_family = post_incident(client, submitter, incident_at("2030-03-05T10:00:00Z"))
    adult_only = post_incident(client, submitter, victim_only("2030-01-01T10:00:00Z"))
    sign_in("triage")

    def shown(query: str) -> set[str]:
        page = client.get(f"/ui/queue{query}")
        assert page.status_code == 200, page.text
        ids = {overdue_family, future_family, adult_only}
        return {i for i in ids if f'href="/ui/incidents/{i}"' in page.text}

    assert shown("") == {overdue_family, future_family, adult_only}
    assert shown("?agency=csc") == {overdue_family, future_family}
    assert shown("?type=children_social_care_referral") == {overdue_family, future_family}
    assert shown("?overdue=true") == {overdue_family}
    assert shown("?agency=csc&overdue=true") == {overdue_family}
    assert shown("?agency=adult_social_care&type=marac_referral") == set()

    page = client.get("/ui/queue?agency=csc&type=children_social_care_referral&overdue=true")
    html = page.text
    assert '<option value="csc" selected>Children&#39;s social care</option>' in html
    assert '<option value="children_social_care_referral" selected>' in html
    assert 'id="overdue" name="overdue" value="true" checked' in html
    assert "Only incidents with an open flag for Children&#39;s social care" in html
    # The refresh includes the filter form, and the partial table honours the filters.
    assert 'hx-include="#queue-filters"' in html
    assert 'id="queue-filters"' in html
    partial = client.get("/ui/queue?partial=true&agency=csc&overdue=true")
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert f"/ui/incidents/{overdue_family}" in partial.text
    assert f"/ui/incidents/{future_family}" not in partial.text


def test_unknown_filter_values_are_no_filter_and_never_echoed(
    client: TestClient, submitter: dict[str, str], sign_in: SignIn
) -> None:
    incident_id = post_incident(client, submitter, incident_at("2030-03-05T10:00:00Z"))
    sign_in("triage")
    page = client.get("/ui/queue?agency=evilagency&type=nothing-here&overdue=perhaps")
    assert page.status_code == 200
    assert "evil" not in page.text
    assert "nothing-here" not in page.text
    assert f"/ui/incidents/{incident_id}" in page.text


def test_queue_screen_shows_and_filters_notification_problems(
    client: TestClient, submitter: dict[str, str], make_key: KeyMaker, sign_in: SignIn
) -> None:
    subscribed = client.post(
        "/v1/admin/subscriptions",
        json={"agency": "csc", "url": "https://csc.example/hook"},
        headers=make_key("admin"),
    )
    assert subscribed.status_code == 201, subscribed.text
    overdue_family = post_incident(client, submitter, incident_at("2020-06-01T10:00:00Z"))
    future_family = post_incident(client, submitter, incident_at("2030-03-05T10:00:00Z"))
    sign_in("triage")
    # Not yet sent, and the 2020 family's flags are long past due: a problem; 2030's are not.
    page = client.get("/ui/queue?notice=problem")
    assert page.status_code == 200, page.text
    assert f"/ui/incidents/{overdue_family}" in page.text
    assert f"/ui/incidents/{future_family}" not in page.text
    assert 'id="notice" name="notice" value="problem" checked' in page.text
    assert "notification failed or went unacknowledged past its due time" in page.text
    assert "notification problem" in page.text
    everything = client.get("/ui/queue").text
    assert f"/ui/incidents/{future_family}" in everything
    incident = client.get(f"/ui/incidents/{future_family}").text
    assert "Agency notified" in incident
    assert "Waiting to be sent" in incident
    assert "Not notified" in incident  # the flags of agencies with no subscription
