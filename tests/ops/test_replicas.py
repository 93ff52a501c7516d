"""Two replicas against one PostgreSQL behave as one service.

Two uvicorn processes (as two pods behind a load balancer would be) share one database and
one Redis. Requests are spread over both; what must hold is what holds for one: a retry is
never a second incident, a person is linked once, the audit chain stays one unbroken line,
and the write rate limit counts a client's writes wherever they land. Invented test data.
"""

from __future__ import annotations

import asyncio
import itertools
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from sqlalchemy import text

from app.auth.keys import create_key
from app.db import Database
from tests.conftest import TempDatabase
from tests.ops.test_burst import distinct_incident
from tests.support.service import RunningService, running_service

# Two real servers (module-scoped) on one worker, with the machine to itself: the rate
# limit's window is a minute of wall time, and requests keep httpx's 5 s default timeout.
pytestmark = [pytest.mark.slow, pytest.mark.exclusive]

WRITES_PER_MINUTE = 12


@dataclass
class Replicas:
    a: RunningService
    b: RunningService
    database: Database
    submitters: list[dict[str, str]]
    rate_limited: dict[str, str]  # a submitter no other test writes with
    triage: dict[str, str]
    auditor: dict[str, str]

    def urls(self) -> Iterator[str]:
        return itertools.cycle([self.a.base_url, self.b.base_url])


def _headers(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}", "X-Purpose": "triage"}


@pytest.fixture(scope="module")
def replicas(
    backend: str, redis_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Replicas]:
    if backend != "postgres":
        pytest.skip("several replicas need PostgreSQL (SQLite is one node's file)")
    temp = TempDatabase(backend, tmp_path_factory.mktemp("replicas"), "replicas")
    database = Database(temp.url)
    with database.session() as s:
        submitters = [
            _headers(create_key(s, role="submitter", source_system="force-a-records").secret)
            for _ in range(13)
        ]
        triage = _headers(create_key(s, role="triage", areas=["E09000018"]).secret)
        auditor = _headers(create_key(s, role="auditor").secret)
        s.commit()
    env = {"TRIAGE_REDIS_URL": redis_url, "TRIAGE_WRITE_RATE_PER_MINUTE": str(WRITES_PER_MINUTE)}
    with running_service(temp.url, env=env) as a, running_service(temp.url, env=env) as b:
        yield Replicas(a, b, database, submitters[:12], submitters[12], triage, auditor)
    database.dispose()
    temp.drop()


def _gather(calls: list[tuple[str, str, str, dict[str, Any]]]) -> list[httpx.Response]:
    async def main() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=60) as client:
            return list(
                await asyncio.gather(
                    *(client.request(method, base + path, **kw) for method, base, path, kw in calls)
                )
            )

    return asyncio.run(main())


def test_a_retry_on_the_other_replica_is_never_a_second_incident(replicas: Replicas) -> None:
    body = distinct_incident(f"rep-{uuid.uuid4().hex[:6]}", 1)
    keyed = {**replicas.submitters[0], "Idempotency-Key": uuid.uuid4().hex}
    first = httpx.post(f"{replicas.a.base_url}/v1/incidents", json=body, headers=keyed)
    retry = httpx.post(f"{replicas.b.base_url}/v1/incidents", json=body, headers=keyed)
    assert (first.status_code, retry.status_code) == (201, 200), retry.text
    assert retry.headers["idempotent-replayed"] == "true"
    assert retry.json()["incident_id"] == first.json()["incident_id"]

    # The same new incident sent at once through both, by several clients.
    same = distinct_incident(f"rep-{uuid.uuid4().hex[:6]}", 2)
    urls = replicas.urls()
    results = _gather(
        [
            ("POST", next(urls), "/v1/incidents", {"json": same, "headers": h})
            for h in replicas.submitters[1:11]
        ]
    )
    statuses = [r.status_code for r in results]
    assert statuses.count(201) == 1, statuses
    assert set(statuses) <= {200, 201, 503}
    assert len({r.json()["incident_id"] for r in results if r.status_code < 300}) == 1
    with replicas.database.session() as s:
        count = s.execute(
            text("SELECT count(*) FROM incidents WHERE source_reference = :r"),
            {"r": same["source"]["reference"]},
        ).scalar_one()
    assert count == 1


def test_one_new_person_is_linked_once_across_replicas(replicas: Replicas) -> None:
    pnc = f"{uuid.uuid4().int % 90 + 10:02d}/{uuid.uuid4().int % 10**7}Q"
    bodies = []
    for n in range(10):
        body = distinct_incident(f"link-{uuid.uuid4().hex[:6]}", n)
        victim = next(p for p in body["persons"] if p["role"] == "victim")
        victim["identifiers"] = [{"scheme": "pnc", "value": pnc}]
        bodies.append(body)
    urls = replicas.urls()
    results = _gather(
        [
            ("POST", next(urls), "/v1/incidents", {"json": b, "headers": h})
            for b, h in zip(bodies, replicas.submitters[1:11], strict=True)
        ]
    )
    assert all(r.status_code == 201 for r in results), [r.status_code for r in results]
    with replicas.database.session() as s:
        holders = s.execute(
            text("SELECT count(DISTINCT person_id) FROM person_identifiers WHERE value = :v"),
            {"v": pnc},
        ).scalar_one()
        victims = s.execute(
            text(
                "SELECT count(DISTINCT ip.person_id) FROM incident_persons ip "
                "JOIN person_identifiers pi ON pi.person_id = ip.person_id "
                "WHERE pi.value = :v AND ip.role = 'victim'"
            ),
            {"v": pnc},
        ).scalar_one()
    assert (holders, victims) == (1, 1)


def create_on(replicas: Replicas, service: RunningService, prefix: str, n: int) -> str:
    """A new incident (a household of its own) submitted to ``service``; its id."""
    created = httpx.post(
        f"{service.base_url}/v1/incidents",
        json=distinct_incident(f"{prefix}-{uuid.uuid4().hex[:6]}", n),
        headers=replicas.submitters[11],
    )
    assert created.status_code == 201, created.text
    return str(created.json()["incident_id"])


def test_the_audit_chain_stays_one_line_across_replicas(replicas: Replicas) -> None:
    incident_id = create_on(replicas, replicas.a, "chain", 3)
    urls = replicas.urls()
    calls: list[tuple[str, str, str, dict[str, Any]]] = []
    for n in range(10):
        calls.append(
            (
                "POST",
                next(urls),
                "/v1/incidents",
                {
                    "json": distinct_incident(f"chain-{uuid.uuid4().hex[:6]}", n),
                    "headers": replicas.submitters[n],
                },
            )
        )
        calls.append(
            ("GET", next(urls), f"/v1/incidents/{incident_id}", {"headers": replicas.triage})
        )
    results = _gather(calls)
    assert all(r.status_code in (200, 201) for r in results), [r.status_code for r in results]
    for base in (replicas.a.base_url, replicas.b.base_url):
        verified = httpx.get(f"{base}/v1/audit/verify", headers=replicas.auditor, timeout=60)
        assert verified.status_code == 200, verified.text
        assert verified.json()["ok"] is True, verified.json()
    with replicas.database.session() as s:
        seqs = s.execute(text("SELECT min(seq), max(seq), count(*) FROM audit_events")).one()
    assert seqs[0] == 1
    assert seqs[1] == seqs[2]


def test_the_write_rate_limit_counts_a_client_on_every_replica(replicas: Replicas) -> None:
    # A key of its own: what its window holds is this test's writes, whenever the tests
    # before it ran (a window is a minute of wall time).
    key = replicas.rate_limited
    urls = replicas.urls()
    statuses = []
    for n in range(WRITES_PER_MINUTE + 4):
        r = httpx.post(
            f"{next(urls)}/v1/incidents",
            json=distinct_incident(f"rate-{uuid.uuid4().hex[:6]}", n),
            headers=key,
            timeout=30,
        )
        statuses.append(r.status_code)
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1
    # Alternating replicas: one window for both, not one each (which would allow all 16).
    assert statuses.count(201) == WRITES_PER_MINUTE
    assert statuses.count(429) == 4
    assert set(statuses) <= {201, 429}


def test_a_replica_reads_what_the_other_wrote_at_once(replicas: Replicas) -> None:
    incident_id = create_on(replicas, replicas.b, "read", 4)
    read = httpx.get(
        f"{replicas.a.base_url}/v1/incidents/{incident_id}",
        headers=replicas.triage,
    )
    assert read.status_code == 200
    assert read.json()["id"] == incident_id
