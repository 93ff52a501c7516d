"""Admission control: a bounded number at work, a short ordered queue, and a quick 503."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.ops.admission import AdmissionMiddleware, Gate

# Refusals "at once" and probes that "never queue" are wall-clock budgets: measured with
# the machine to itself, not against another worker's tests.
pytestmark = pytest.mark.exclusive


def test_the_gate_admits_up_to_capacity_then_queues_then_sheds() -> None:
    async def main() -> None:
        gate = Gate(capacity=2, queue=1)
        assert await gate.enter(0.1)
        assert await gate.enter(0.1)
        waiter = asyncio.create_task(gate.enter(5))
        await asyncio.sleep(0.01)
        assert gate.waiting == 1
        started = time.monotonic()
        assert not await gate.enter(5)  # the queue is full: refused at once
        assert time.monotonic() - started < 0.1
        gate.leave()  # the waiter gets the place handed over
        assert await waiter
        assert (gate.active, gate.waiting) == (2, 0)

    asyncio.run(main())


def test_a_waiter_gives_up_after_the_timeout_and_its_place_is_not_lost() -> None:
    async def main() -> None:
        gate = Gate(capacity=1, queue=5)
        assert await gate.enter(0.1)
        started = time.monotonic()
        assert not await gate.enter(0.05)
        assert 0.04 < time.monotonic() - started < 1
        assert gate.waiting == 0
        gate.leave()
        assert gate.active == 0
        assert await gate.enter(0.1)  # the place is free again

    asyncio.run(main())


def test_waiters_are_served_in_order_and_a_cancelled_one_is_skipped() -> None:
    async def main() -> None:
        gate = Gate(capacity=1, queue=3)
        assert await gate.enter(0.1)
        order: list[str] = []

        async def wait(name: str) -> None:
            if await gate.enter(5):
                order.append(name)

        first = asyncio.create_task(wait("first"))
        await asyncio.sleep(0.01)
        second = asyncio.create_task(wait("second"))
        await asyncio.sleep(0.01)
        third = asyncio.create_task(wait("third"))
        await asyncio.sleep(0.01)
        second.cancel()
        await asyncio.sleep(0.01)
        gate.leave()
        await first
        gate.leave()
        await third
        assert order == ["first", "third"]
        assert gate.waiting == 0

    asyncio.run(main())


def _slow_app(capacity: int, queue: int, timeout: float) -> FastAPI:
    inner = FastAPI()

    @inner.get("/work")
    async def work() -> dict[str, str]:
        await asyncio.sleep(0.3)
        return {"done": "yes"}

    @inner.get("/livez")
    async def livez() -> dict[str, str]:
        return {"status": "ok"}

    inner.add_middleware(
        AdmissionMiddleware,
        gate=Gate(capacity, queue),
        timeout=timeout,
        retry_after=3,
        exempt=("/livez",),
    )
    return inner


@pytest.mark.parametrize(("queue", "timeout"), [(0, 5.0), (10, 0.05)])
def test_excess_requests_get_503_with_retry_after_and_probes_never_queue(
    queue: int, timeout: float
) -> None:
    app = _slow_app(capacity=1, queue=queue, timeout=timeout)
    with TestClient(app) as client:

        async def burst() -> list[Any]:
            loop = asyncio.get_running_loop()
            calls = [loop.run_in_executor(None, client.get, "/work") for _ in range(4)]
            await asyncio.sleep(0.05)
            probe_started = time.monotonic()
            probe = await loop.run_in_executor(None, client.get, "/livez")
            probe_took = time.monotonic() - probe_started
            return [*(await asyncio.gather(*calls)), (probe, probe_took)]

        *responses, (probe, probe_took) = asyncio.run(burst())
    statuses = sorted(r.status_code for r in responses)
    assert statuses.count(200) >= 1
    assert 503 in statuses
    for r in responses:
        if r.status_code == 503:
            assert r.headers["retry-after"] == "3"
            assert r.headers["content-type"] == "application/problem+json"
            assert "capacity" in r.json()["detail"]
    assert probe.status_code == 200
    assert probe_took < 0.25  # not behind the slow requests
