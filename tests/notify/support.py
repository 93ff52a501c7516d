"""What the notification tests share: a service with real commits and its dispatcher's
settings, and the personal data of the example incident that no notification may carry."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import select

from app.config import Settings
from app.db import Database
from app.notify import dispatcher
from app.notify.models import Notification
from tests.conftest import example_incident
from tests.flags.api_helpers import incident_at

SCHOOL_URN = "100123"  # the example incident's child's school
AREA = "E09000018"


class Env:
    def __init__(
        self,
        db: Database,
        client: TestClient,
        keys: dict[str, dict[str, str]],
        **settings: Any,
    ):
        self.db = db
        self.client = client
        self.keys = keys
        dispatcher_settings: dict[str, Any] = {
            "notify_backoff_base_seconds": 0,
            "notify_max_attempts": 3,
            "notify_timeout_seconds": 2,
            **settings,
        }
        self.settings = Settings(environment="test", database_url=db.url, **dispatcher_settings)

    def subscribe(self, agency: str, url: str | None = None, **extra: Any) -> dict[str, Any]:
        body = {"agency": agency, **({"url": url} if url else {}), **extra}
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


MakeEnv = Callable[..., Env]  # the `make_env` fixture: make_env(**settings)


def personal_values() -> list[str]:
    """Names, dates of birth and free text of the example incident."""
    body = example_incident()
    found: list[str] = []
    for person in body["persons"]:
        found += list(person.get("name", {}).values())
        for key in ("date_of_birth", "expected_date"):
            if key in person:
                found.append(person[key])
        child = person.get("child") or {}
        if "account" in child:
            found.append(child["account"])
        if "school" in child:
            found.append(child["school"]["name"])
    found += [body["occurred_at"][:10], body["reported_at"], body["source"]["reference"]]
    return [v for v in found if v]
