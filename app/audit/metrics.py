"""Audit gauges on ``/metrics``: read events committed but not chained yet, and their age.

Refreshed when ``/metrics`` renders (``app.state.metric_refreshers``). A growing count or
age means the sealer is not running or cannot take the chain's lock.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge

from app.audit.chain import pending_status
from app.db import Database, utcnow

log = structlog.get_logger(__name__)


def pending_refresher(registry: CollectorRegistry, database: Database) -> Callable[[], None]:
    count = Gauge(
        "triage_audit_pending_events",
        "Read events committed but not yet chained into the audit log.",
        registry=registry,
    )
    age = Gauge(
        "triage_audit_oldest_pending_seconds",
        "Age of the oldest read event not yet chained (0 when none is waiting).",
        registry=registry,
    )

    def refresh() -> None:
        try:
            with database.engine.connect() as conn:
                status = pending_status(conn.execution_options(sqlite_begin="DEFERRED"))
        except Exception as exc:  # the metrics page must render without the database
            log.warning("audit_gauge_not_refreshed", error_type=type(exc).__name__)
            return
        count.set(status.count)
        oldest = status.oldest_at
        age.set(0 if oldest is None else max(0.0, (utcnow() - oldest).total_seconds()))

    return refresh


def install_audit_metrics(app: FastAPI) -> None:
    app.state.metric_refreshers.append(
        pending_refresher(app.state.metrics.registry, app.state.database)
    )
