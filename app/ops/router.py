"""Liveness, readiness and metrics (outside /v1; no credential needed)."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel
from sqlalchemy import text

from app.errors import problem_responses
from app.ops.migrations import current_revisions

router = APIRouter(tags=["operations"])


class Health(BaseModel):
    status: str


@router.get("/livez", response_model=Health, operation_id="livez", summary="Process is up")
def livez() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    operation_id="readyz",
    summary="Database reachable and migrated",
    responses=problem_responses(503),
)
def readyz(request: Request, response: Response) -> Health:
    state = request.app.state
    if getattr(state, "shutting_down", False):
        response.status_code = 503
        return Health(status="shutting_down")
    try:
        with state.database.engine.connect() as conn:
            conn = conn.execution_options(sqlite_begin="DEFERRED")
            conn.execute(text("SELECT 1"))
            migrated = current_revisions(conn) == state.migration_heads
    except Exception:  # any database failure means "not ready"
        response.status_code = 503
        return Health(status="database_unreachable")
    if not migrated:
        response.status_code = 503
        return Health(status="migrations_pending")
    return Health(status="ready")


@router.get(
    "/metrics",
    operation_id="metrics",
    summary="Prometheus metrics",
    response_class=Response,
    responses={200: {"content": {CONTENT_TYPE_LATEST.split(";")[0]: {}}}},
)
def metrics(request: Request) -> Response:
    state = request.app.state
    for refresh in getattr(state, "metric_refreshers", ()):
        refresh()
    return Response(generate_latest(state.metrics.registry), media_type=CONTENT_TYPE_LATEST)
