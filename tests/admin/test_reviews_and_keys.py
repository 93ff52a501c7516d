"""Admin routes other than erasure: retention reviews due (DPA 2018 s.39) and API keys.

Admins manage keys and configuration, never case data: nothing here returns personal data.
All data is invented test data.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit.models import AuditEvent
from app.auth.models import ApiKey
from app.db import utcnow
from app.incidents import models
from tests.auth.scenario import PROBLEM, incident_body, post_incident
from tests.conftest import KeyMaker

REVIEWS = "/v1/admin/reviews-due"


@pytest.fixture
def admin(make_key: KeyMaker) -> dict[str, str]:
    return make_key("admin")


def set_review_due(session: Session, incident_id: str, days_from_now: float) -> None:
    row = session.get(models.Incident, uuid.UUID(incident_id))
    assert row is not None
    row.review_due_at = utcnow() + timedelta(days=days_from_now)
    session.commit()


@pytest.fixture
def reviews(
    client: TestClient, submitter: dict[str, str], admin: dict[str, str], session: Session
) -> dict[str, Any]:
    """Three incidents past review, one not yet due, one past due but already erased."""
    ids = [post_incident(client, submitter, incident_body()) for _ in range(5)]
    overdue, future, erased = ids[:3], ids[3], ids[4]
    for n, iid in enumerate(overdue):
        set_review_due(session, iid, -30 + n)  # due 30, 29 and 28 days ago, in that order
    set_review_due(session, future, 365)
    set_review_due(session, erased, -60)
    r = client.post(
        f"/v1/incidents/{erased}/erase", json={"reason": "test: disposed"}, headers=admin
    )
    assert r.status_code == 200
    return {"overdue": overdue, "future": future, "erased": erased}


def test_reviews_due_lists_incidents_past_their_review_date_and_not_erased(
    client: TestClient, admin: dict[str, str], reviews: dict[str, Any]
) -> None:
    r = client.get(REVIEWS, headers=admin)
    assert r.status_code == 200
    page = r.json()
    assert [i["incident_id"] for i in page["items"]] == reviews["overdue"]
    assert page["next_cursor"] is None
    assert set(page["items"][0]) == {"incident_id", "area", "review_due_at", "received_at"}
    # Asked about a later date, reviews not yet due are included (erased ones never).
    later = (utcnow() + timedelta(days=400)).isoformat()
    r = client.get(REVIEWS, params={"before": later}, headers=admin)
    assert [i["incident_id"] for i in r.json()["items"]] == [*reviews["overdue"], reviews["future"]]


def test_reviews_due_pages_with_a_cursor_that_survives_an_unencoded_url(
    client: TestClient, admin: dict[str, str], reviews: dict[str, Any]
) -> None:
    first = client.get(REVIEWS, params={"limit": 2}, headers=admin).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    # Pasted into a URL as is, without percent-encoding.
    r = client.get(f"{REVIEWS}?limit=2&after={first['next_cursor']}", headers=admin)
    assert r.status_code == 200, r.text
    second = r.json()
    assert second["next_cursor"] is None
    assert [i["incident_id"] for i in first["items"] + second["items"]] == reviews["overdue"]


def test_an_invalid_reviews_cursor_is_a_400_like_every_cursor(
    client: TestClient, admin: dict[str, str]
) -> None:
    for cursor, status in (
        ("nonsense", 400),
        ("2026-01-01T00:00:00+00:00|not-a-uuid", 400),
        ("x" * 81, 422),  # longer than the documented maximum: the schema says so
        ("2026-13-45T99:99:99.000000Z_" + "0" * 36, 400),
    ):
        r = client.get(REVIEWS, params={"after": cursor}, headers=admin)
        assert r.status_code == status, cursor
        assert r.headers["content-type"] == PROBLEM


# --------------------------------------------------------------------------- keys


def test_an_admin_creates_a_key_whose_secret_is_shown_once_and_works(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    r = client.post(
        "/v1/admin/keys",
        json={
            "role": "agency",
            "agency": "school",
            "areas": ["E09000018"],
            "schools": ["100123"],
            "label": "test lead",
        },
        headers=admin,
    )
    assert r.status_code == 201, r.text
    issued = r.json()
    secret = issued["secret"]
    assert secret.startswith(issued["prefix"] + "_")
    assert (issued["role"], issued["agency"], issued["areas"], issued["schools"]) == (
        "agency",
        "school",
        ["E09000018"],
        ["100123"],
    )
    # Listed, but never with the secret or its hash.
    listing = client.get("/v1/admin/keys", headers=admin)
    assert listing.status_code == 200
    assert issued["id"] in listing.text
    assert secret not in listing.text
    row = session.get(ApiKey, uuid.UUID(issued["id"]))
    assert row is not None
    assert row.key_hash not in listing.text
    assert all("secret" not in k and "key_hash" not in k for k in listing.json())
    # The new key authenticates (403 here: an agency may not read the audit log).
    assert (
        client.get("/v1/audit/verify", headers={"Authorization": f"Bearer {secret}"}).status_code
        == 403
    )
    created = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert created is not None
    assert (created.operation, created.record_type, created.record_ids) == (
        "collect",
        "key",
        [issued["id"]],
    )
    assert secret not in repr(created.detail)


def test_an_admin_creates_an_adult_social_care_key(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    body = {"role": "agency", "agency": "adult_social_care", "areas": ["E09000018"]}
    r = client.post("/v1/admin/keys", json=body, headers=admin)
    assert r.status_code == 201, r.text
    assert (r.json()["role"], r.json()["agency"]) == ("agency", "adult_social_care")
    row = session.get(ApiKey, uuid.UUID(r.json()["id"]))
    assert row is not None
    assert row.agency == "adult_social_care"


def test_a_school_key_without_a_school_is_refused_without_repeating_the_request(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    before = len(session.scalars(select(ApiKey)).all())
    base = {"role": "agency", "agency": "school", "areas": ["E09000018"], "label": "Lead 4417"}
    for body in (base, {**base, "schools": ["94/118822K"]}):
        r = client.post("/v1/admin/keys", json=body, headers=admin)
        assert r.status_code == 422, r.text
        assert r.headers["content-type"] == PROBLEM
        problem = r.json()
        assert problem["status"] == 422
        assert "type" in problem
        assert "title" in problem
        for given in ("94/118822K", "Lead 4417"):
            assert given not in r.text
    refused = client.post("/v1/admin/keys", json=base, headers=admin).json()
    assert "school" in refused["detail"]
    assert len(session.scalars(select(ApiKey)).all()) == before


def test_an_admin_revokes_a_key_and_it_stops_working(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    issued = client.post("/v1/admin/keys", json={"role": "auditor"}, headers=admin).json()
    auth = {"Authorization": f"Bearer {issued['secret']}"}
    assert client.get("/v1/audit/verify", headers=auth).status_code == 200
    r = client.delete(f"/v1/admin/keys/{issued['id']}", headers=admin)
    assert r.status_code == 204
    assert client.get("/v1/audit/verify", headers=auth).status_code == 401
    listed = {k["id"]: k for k in client.get("/v1/admin/keys", headers=admin).json()}
    assert listed[issued["id"]]["revoked_at"] is not None
    revoked = session.scalars(select(AuditEvent).order_by(AuditEvent.seq.desc())).first()
    assert revoked is not None
    assert (revoked.operation, revoked.record_type) == ("alter", "key")
    # Revoking again, or a key that never existed: 404.
    assert client.delete(f"/v1/admin/keys/{issued['id']}", headers=admin).status_code == 404
    assert client.delete(f"/v1/admin/keys/{uuid.uuid4()}", headers=admin).status_code == 404


def test_an_admin_can_revoke_their_own_key(client: TestClient, admin: dict[str, str]) -> None:
    mine = client.get("/v1/admin/keys", headers=admin).json()
    assert len(mine) == 1
    assert client.delete(f"/v1/admin/keys/{mine[0]['id']}", headers=admin).status_code == 204
    assert client.get("/v1/admin/keys", headers=admin).status_code == 401


def test_a_key_that_expires_is_listed_with_its_expiry(
    client: TestClient, admin: dict[str, str]
) -> None:
    issued = client.post(
        "/v1/admin/keys", json={"role": "auditor", "expires_in_days": 1}, headers=admin
    ).json()
    assert issued["expires_at"] is not None


INCONSISTENT_KEYS: tuple[dict[str, Any], ...] = (
    {"role": "agency", "areas": ["E09000018"]},  # no agency
    {"role": "triage"},  # no area
    {"role": "submitter"},  # no source system
    {"role": "auditor", "agency": "school"},
    {"role": "agency", "agency": "school", "areas": ["E09000018"]},  # no school URN
    {"role": "agency", "agency": "school", "areas": ["E09000018"], "schools": []},
    {"role": "agency", "agency": "school", "areas": ["E09000018"], "schools": ["12345"]},
    {"role": "agency", "agency": "school", "areas": ["E09000018"], "schools": [100123]},
    {"role": "agency", "agency": "csc", "areas": ["E09000018"], "schools": ["100123"]},
    {"role": "auditor", "schools": ["100123"]},
    {"role": "superuser"},
    {"role": "agency", "agency": "bank", "areas": ["E09000018"]},
    {"role": "triage", "areas": ["E09000018; DROP TABLE"]},
    {"role": "auditor", "expires_in_days": 0},
    {"role": "auditor", "secret": "chosen-by-caller"},  # unknown property
)


def test_an_inconsistent_key_request_is_422_and_creates_nothing(
    client: TestClient, admin: dict[str, str], session: Session
) -> None:
    before = len(session.scalars(select(ApiKey)).all())
    for body in INCONSISTENT_KEYS:
        r = client.post("/v1/admin/keys", json=body, headers=admin)
        assert r.status_code == 422, (body, r.text)
        assert r.headers["content-type"] == PROBLEM
    assert len(session.scalars(select(ApiKey)).all()) == before
