"""The notification tests' environment: a fresh database (real commits, SQLite and
PostgreSQL) with the app, keys for each role, and a local receiver."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.notify import dispatcher
from app.notify.models import Notification
from tests.conftest import build_app
from tests.flags.api_helpers import incident_at
from tests.notify.receiver import Receiver

SCHOOL_URN = "100123"  # the example incident's child's school


class Env:
    def __init__(self, db: Database, client: TestClient, keys: dict[str, dict[str, str]]):
        self.db = db
        self.client = client
        self.keys = keys
        self.settings = Settings(
            environment="test",
            database_url=db.url,
            notify_backoff_base_seconds=0,
            notify_max_attempts=3,
            notify_timeout_seconds=2,
        )

    def subscribe(self, agency: str, url: str, **extra: Any) -> dict[str, Any]:
        body = {"agency": agency, "url": url, **extra}
        r = self.client.post("/v1/admin/subscriptions", json=body, headers=self.keys["admin"])
        assert r.status_code == 201, r.text
        return dict(r.json())

    def post_incident(self, body: dict[str, Any] | None = None) -> str:
        body = body or incident_at("2026-11-20T22:31:00Z")
        r = self.client.post("/v1/incidents", json=body, headers=self.keys["submitter"])
        assert r.status_code == 201, r.text
        return str(r.json()["incident_id"])

    def notifications(self) -> list[Notification]:
        with self.db.unit(read_only=True) as s:
            return list(s.scalars(select(Notification).order_by(Notification.created_at)))

    def dispatch(self) -> dispatcher.Round:
        return dispatcher.run_once(self.db, self.settings)


@pytest.fixture
def env(fresh_database: Database, make_key_fresh: Callable[..., dict[str, str]]) -> Iterator[Env]:
    settings = Settings(environment="test", database_url=fresh_database.url)
    keys = {
        "admin": make_key_fresh(fresh_database, "admin"),
        "submitter": make_key_fresh(fresh_database, "submitter"),
        "csc": make_key_fresh(fresh_database, "agency", agency="csc"),
        "school": make_key_fresh(fresh_database, "agency", agency="school", schools=[SCHOOL_URN]),
        "triage": make_key_fresh(fresh_database, "triage"),
    }
    app = build_app(settings, fresh_database, None)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield Env(fresh_database, client, keys)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()
