"""Parallel intakes about one person create one person record, on SQLite and PostgreSQL.

Each thread sends its own HTTP request to an app whose requests commit for real (a fresh
database per test). All people, identifiers and references are invented test data.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.config import Settings
from app.db import Database
from app.incidents import models
from app.people import repository
from tests.conftest import build_app
from tests.people.factories import AMY, PAUL, days_before, make_incident, perpetrator, victim

THREADS = 8


def submit_in_parallel(
    database: Database, headers: dict[str, str], bodies: list[dict[str, Any]]
) -> list[int]:
    app = build_app(Settings(environment="test", database_url=database.url), database, None)
    # Warm up: the first intake stores the definition snapshots; racing on those would
    # serialise the requests below and hide a race on the persons.
    warm_up = make_incident(
        "WARM-UP", days_before(900), [victim("Ivy", "Ng", "1990-01-01"), perpetrator("Al", "Bo")]
    )
    assert TestClient(app).post("/v1/incidents", json=warm_up, headers=headers).status_code == 201
    start = threading.Barrier(len(bodies))
    statuses: list[int] = []
    errors: list[BaseException] = []

    def send(body: dict[str, Any]) -> None:
        try:
            client = TestClient(app, raise_server_exceptions=False)  # one per thread
            start.wait()
            statuses.append(client.post("/v1/incidents", json=body, headers=headers).status_code)
        except BaseException as exc:  # reported below; a thread must not die silently
            errors.append(exc)

    threads = [threading.Thread(target=send, args=(b,)) for b in bodies]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    return statuses


def records_in_role(s: Session, role: str) -> list[uuid.UUID]:
    """The person records of ``role`` in the parallel incidents (not the warm-up)."""
    return list(
        s.scalars(
            select(models.IncidentPerson.person_id)
            .join(models.Incident, models.Incident.id == models.IncidentPerson.incident_id)
            .where(
                models.IncidentPerson.role == role,
                models.Incident.source_reference != "WARM-UP",
            )
        )
    )


def one_survivor(database: Database, role: str) -> int:
    with database.session() as s:
        return len(set(repository.survivors(s, records_in_role(s, role)).values()))


def test_parallel_submissions_about_one_person_create_one_person_record(
    fresh_database: Database, make_key_fresh: Callable[..., dict[str, str]]
) -> None:
    headers = make_key_fresh(fresh_database)
    bodies = [
        make_incident(
            f"PAR-{n}",
            days_before(n),
            # The perpetrator by PNC id; the victim by name and date of birth only.
            [victim(**AMY), perpetrator(**PAUL, pnc="86/200002B")],
        )
        for n in range(THREADS)
    ]

    statuses = submit_in_parallel(fresh_database, headers, bodies)

    assert statuses == [201] * THREADS
    with fresh_database.session() as s:
        holders = s.scalars(
            select(models.PersonIdentifier.person_id).where(models.PersonIdentifier.scheme == "pnc")
        ).all()
        assert len(holders) == 1
        assert set(records_in_role(s, "perpetrator")) == set(holders)
        # One victim record made new; the others linked on name and date of birth into it.
        rules = s.execute(
            select(models.IncidentPerson.link_rule, func.count())
            .join(models.Incident, models.Incident.id == models.IncidentPerson.incident_id)
            .where(
                models.IncidentPerson.role == "victim",
                models.Incident.source_reference != "WARM-UP",
            )
            .group_by(models.IncidentPerson.link_rule)
        ).all()
        assert dict(rules) == {"new": 1, "name_dob": THREADS - 1}
    assert one_survivor(fresh_database, "victim") == 1


def test_parallel_submissions_known_only_by_name_and_date_of_birth_make_one_person(
    fresh_database: Database, make_key_fresh: Callable[..., dict[str, str]]
) -> None:
    """No identifier, so no unique constraint to fall back on: only the lock serialises."""
    headers = make_key_fresh(fresh_database)
    bodies = [
        make_incident(f"PAR-N-{n}", days_before(n), [victim(**AMY), perpetrator(**PAUL)])
        for n in range(THREADS)
    ]

    assert submit_in_parallel(fresh_database, headers, bodies) == [201] * THREADS
    assert one_survivor(fresh_database, "victim") == 1
    assert one_survivor(fresh_database, "perpetrator") == 1
