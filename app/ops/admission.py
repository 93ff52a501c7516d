"""Admission control: a bounded number of requests at work, a short queue, and a quick 503.

Every request that does work holds at most one worker thread and one database connection
at a time. Admitting at most ``capacity`` of them at once (sized below the thread pool and
the connection pool) means an admitted request never waits for either; up to ``queue``
more wait their turn in order, for at most ``timeout`` seconds; anything beyond is
answered at once with a 503 problem and ``Retry-After``, so a burst is shed in
milliseconds instead of piling up behind locks for tens of seconds. Probes and metrics
(``exempt``) bypass the gate: they must answer during overload.

Pure ASGI and safe across event loops (the test client may run several): the counters are
guarded by a ``threading.Lock`` and a waiter is woken on its own loop.
"""

from __future__ import annotations

import asyncio
import threading
from collections import deque
from collections.abc import Collection

from prometheus_client import CollectorRegistry, Counter, Gauge
from starlette.types import ASGIApp, Receive, Scope, Send

from app.auth.deps import INTERNAL_PRINCIPAL
from app.errors import ServiceUnavailable, send_problem


class Gate:
    """``capacity`` holders at once; up to ``queue`` waiters, served first come first served."""

    def __init__(self, capacity: int, queue: int) -> None:
        self.capacity = capacity
        self.queue = queue
        self._lock = threading.Lock()
        self._active = 0
        self._waiters: deque[asyncio.Future[None]] = deque()

    @property
    def active(self) -> int:
        return self._active

    @property
    def waiting(self) -> int:
        return len(self._waiters)

    async def enter(self, timeout: float) -> bool:
        """Take a place; False when the queue is full or the wait ran out (shed)."""
        with self._lock:
            if self._active < self.capacity and not self._waiters:
                self._active += 1
                return True
            if len(self._waiters) >= self.queue:
                return False
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            self._waiters.append(waiter)
        try:
            await asyncio.wait_for(waiter, timeout)
        except (TimeoutError, asyncio.CancelledError) as exc:
            with self._lock:
                if waiter in self._waiters:
                    self._waiters.remove(waiter)
            # If the place was handed over meanwhile, _grant passes it on (wait_for has
            # cancelled the waiter).
            if isinstance(exc, asyncio.CancelledError):
                raise
            return False
        return True

    def leave(self) -> None:
        """Give the place back, or hand it straight to the longest waiter."""
        with self._lock:
            if self._waiters:
                waiter = self._waiters.popleft()
                waiter.get_loop().call_soon_threadsafe(self._grant, waiter)
                return
            self._active -= 1

    def _grant(self, waiter: asyncio.Future[None]) -> None:
        if waiter.done():  # it gave up (timed out or disconnected) just before
            self.leave()
        else:
            waiter.set_result(None)


class AdmissionMetrics:
    def __init__(self, registry: CollectorRegistry, gate: Gate) -> None:
        self.shed = Counter(
            "triage_requests_shed_total",
            "Requests answered 503 at once because too many were already at work or queued.",
            registry=registry,
        )
        in_flight = Gauge(
            "triage_requests_in_flight", "Requests admitted and at work.", registry=registry
        )
        in_flight.set_function(lambda: gate.active)
        queued = Gauge("triage_requests_queued", "Requests waiting for a turn.", registry=registry)
        queued.set_function(lambda: gate.waiting)


class AdmissionMiddleware:
    def __init__(
        self,
        app: ASGIApp,
        *,
        gate: Gate,
        timeout: float,
        retry_after: int,
        exempt: Collection[str],
        metrics: AdmissionMetrics | None = None,
    ) -> None:
        self.app = app
        self.gate = gate
        self.timeout = timeout
        self.retry_after = str(retry_after)
        self.exempt = frozenset(exempt)
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # A screen's in-process call to the API runs within the screen request's own slot.
        if (
            scope["type"] != "http"
            or scope.get("path") in self.exempt
            or INTERNAL_PRINCIPAL in scope
        ):
            await self.app(scope, receive, send)
            return
        if not await self.gate.enter(self.timeout):
            if self.metrics is not None:
                self.metrics.shed.inc()
            await send_problem(
                send,
                ServiceUnavailable(
                    "The service is at capacity; retry after the number of seconds in Retry-After.",
                    headers={"Retry-After": self.retry_after},
                ),
            )
            return
        try:
            await self.app(scope, receive, send)
        finally:
            self.gate.leave()
