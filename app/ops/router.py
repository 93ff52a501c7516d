"""Liveness, readiness and metrics (outside /v1; no credential needed).

All three are ``async`` and never wait for the request worker threads, so they answer while
the service is overloaded: ``/livez`` touches nothing; ``/readyz`` and ``/metrics`` do their
database work on a probe thread of their own (one at a time, never queued behind requests)
and give up after a short time rather than hang (``PROBE_TIMEOUT_SECONDS``).
"""

from __future__ import annotations

import contextlib
from typing import Any

import anyio
from anyio.to_thread import run_sync
from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from app.errors import problem_responses
from app.ops.migrations import current_revisions
from app.requests import StrictJsonRoute

router = APIRouter(tags=["operations"], route_class=StrictJsonRoute)

PROBE_TIMEOUT_SECONDS = 0.8
METRICS_REFRESH_TIMEOUT_SECONDS = 2.0


class Health(BaseModel):
    status: str


@router.get("/livez", response_model=Health, operation_id="livez", summary="Process is up")
async def livez() -> Health:
    return Health(status="ok")


def _database_status(state: Any) -> str:
    try:
        with state.database.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="DEFERRED")
            conn.execute(text("SELECT 1"))
            migrated = current_revisions(conn) == state.migration_heads
    except Exception:  # any database failure means "not ready"
        return "database_unreachable"
    return "ready" if migrated else "migrations_pending"


async def _on_probe_thread(request: Request, func: Any, timeout: float) -> Any:
    """Run ``func`` on the probe thread; TimeoutError if it takes longer than ``timeout``."""
    with anyio.fail_after(timeout):
        return await run_sync(
            func, request.app.state, limiter=request.app.state.probe_limiter, abandon_on_cancel=True
        )


@router.get(
    "/readyz",
    response_model=Health,
    operation_id="readyz",
    summary="Database reachable and migrated",
    responses=problem_responses(503),
)
async def readyz(request: Request, response: Response) -> Health:
    if getattr(request.app.state, "shutting_down", False):
        response.status_code = 503
        return Health(status="shutting_down")
    try:
        status = await _on_probe_thread(request, _database_status, PROBE_TIMEOUT_SECONDS)
    except TimeoutError:
        status = "database_slow"
    if status != "ready":
        response.status_code = 503
    return Health(status=status)


def _refresh_metrics(state: Any) -> None:
    for refresh in getattr(state, "metric_refreshers", ()):
        refresh()


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
async def metrics(request: Request) -> Response:
    # On a timeout, render the last values rather than hang.
    with contextlib.suppress(TimeoutError):
        await _on_probe_thread(request, _refresh_metrics, METRICS_REFRESH_TIMEOUT_SECONDS)
    return Response(
        generate_latest(request.app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST
    )
