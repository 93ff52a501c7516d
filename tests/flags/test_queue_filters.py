"""GET /v1/queue filters by flag: ``agency``, ``type`` and ``overdue`` keep the incidents
with at least one open flag that matches all of those given (the same flag).

All data is invented (tests/data/README.md). Incidents dated in 2020 have every flag long
overdue; those dated in 2030 have none due yet, so nothing depends on today's date.
"""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.conftest import KeyMaker
from tests.flags.api_helpers import flags_of, incident_at, patch_flag, post_incident
from tests.flags.test_queue import queue, victim_only


@pytest.fixture
def triage(make_key: KeyMaker) -> dict[str, str]:
    return make_key("triage")


def ids(rows: list[dict[str, Any]]) -> list[str]:
    return [r["incident_id"] for r in rows]


def test_agency_type_and_overdue_keep_incidents_with_a_matching_open_flag(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    overdue_family = post_incident(client, submitter, incident_at("2020-06-01T10:00:00Z"))
    future_family = post_incident(client, submitter, incident_at("2030-03-05T10:00:00Z"))
    adult_only = post_incident(client, submitter, victim_only("2030-01-01T10:00:00Z"))
    everything = ids(queue(client, triage))
    assert set(everything) == {overdue_family, future_family, adult_only}

    # Children's social care has flags about the children only: not the adults-only case.
    assert {f["agency"] for f in flags_of(client, triage, adult_only)}.isdisjoint({"csc"})
    assert ids(queue(client, triage, agency="csc")) == [i for i in everything if i != adult_only]
    assert ids(queue(client, triage, type="children_social_care_referral")) == [
        i for i in everything if i != adult_only
    ]
    # Several values: any of them; with the order of the unfiltered queue kept.
    assert ids(queue(client, triage, agency=["csc", "police"])) == everything
    assert ids(queue(client, triage, overdue="true")) == [overdue_family]
    assert ids(queue(client, triage, overdue="false")) == [
        i for i in everything if i != overdue_family
    ]
    assert ids(queue(client, triage, agency="csc", overdue="true")) == [overdue_family]
    assert ids(queue(client, triage, agency="adult_social_care", type="marac_referral")) == []

    # The filters describe one flag: when the overdue family's last open csc flag closes,
    # it still has overdue flags of others, but no overdue open csc flag.
    for flag in flags_of(client, triage, overdue_family, agency="csc"):
        r = patch_flag(client, triage, flag, {"status": "done"})
        assert r.status_code == 200, r.text
    assert ids(queue(client, triage, agency="csc", overdue="true")) == []
    assert overdue_family in ids(queue(client, triage, overdue="true"))
    # The row's counts stay those of all its open flags.
    [row] = queue(client, triage, overdue="true")
    assert row["open_flags"] == len(flags_of(client, triage, overdue_family))


def test_a_queue_cursor_is_bound_to_its_flag_filters(
    client: TestClient, submitter: dict[str, str], triage: dict[str, str]
) -> None:
    for day in ("01", "02", "03"):
        post_incident(client, submitter, incident_at(f"2030-03-{day}T10:00:00Z"))
    first = client.get("/v1/queue", params={"agency": "csc", "limit": 1}, headers=triage)
    assert first.status_code == 200, first.text
    cursor = first.json()["next_cursor"]
    assert cursor
    same = client.get(
        "/v1/queue", params={"agency": "csc", "limit": 1, "cursor": cursor}, headers=triage
    )
    assert same.status_code == 200
    assert same.json()["items"][0]["incident_id"] != first.json()["items"][0]["incident_id"]
    for other in ({"agency": "idva"}, {}, {"agency": "csc", "overdue": "true"}):
        r = client.get("/v1/queue", params={**other, "limit": 1, "cursor": cursor}, headers=triage)
        assert r.status_code in (400, 422), (other, r.text)
    # An unfiltered cursor is not valid with a filter either.
    plain = client.get("/v1/queue", params={"limit": 1}, headers=triage).json()["next_cursor"]
    r = client.get(
        "/v1/queue", params={"overdue": "false", "limit": 1, "cursor": plain}, headers=triage
    )
    assert r.status_code == 400
    assert "other filters" in r.json()["detail"]


def test_unknown_agency_or_type_is_refused(client: TestClient, triage: dict[str, str]) -> None:
    assert client.get("/v1/queue", params={"agency": "nobody"}, headers=triage).status_code == 422
    assert client.get("/v1/queue", params={"type": "nothing"}, headers=triage).status_code == 422
    assert client.get("/v1/queue", params={"overdue": "maybe"}, headers=triage).status_code == 422
