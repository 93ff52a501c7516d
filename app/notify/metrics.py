"""Notification gauges on ``/metrics``, read from the outbox when the page renders.

The dispatcher is a process of its own, so the API's ``/metrics`` counts from the table,
which every dispatcher writes: notifications by status (delivered and acknowledged are
delivered, failed is the dead letter), retries made (attempts that did not settle a
notification), and the age of the oldest undelivered one. Labels are statuses only.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.orm import Session

from app.db import Database, utcnow
from app.notify import repository
from app.notify.models import NOTIFICATION_STATUSES

log = structlog.get_logger(__name__)


def outbox_refresher(registry: CollectorRegistry, database: Database) -> Callable[[], None]:
    by_status = Gauge(
        "triage_notifications",
        "Notifications by status (pending, delivered, acknowledged, failed).",
        ["status"],
        registry=registry,
    )
    retried = Gauge(
        "triage_notification_retries",
        "Delivery attempts that failed and were retried or gave up.",
        registry=registry,
    )
    oldest = Gauge(
        "triage_notification_oldest_undelivered_seconds",
        "Age of the oldest pending notification (0 when none is pending).",
        registry=registry,
    )

    def refresh() -> None:
        try:
            with database.engine.connect() as conn:
                conn = conn.execution_options(sqlite_begin="DEFERRED")
                with Session(bind=conn) as session:
                    counts = repository.counts_by_status(session)
                    attempts = repository.total_attempts(session)
                    first = repository.oldest_pending_created_at(session)
        except Exception as exc:  # the metrics page must render without the database
            log.warning("notification_gauges_not_refreshed", error_type=type(exc).__name__)
            return
        for status in NOTIFICATION_STATUSES:
            by_status.labels(status).set(counts.get(status, 0))
        settled = sum(counts.get(s, 0) for s in ("delivered", "acknowledged", "failed"))
        successes_or_ends = settled
        retried.set(max(attempts - successes_or_ends, 0))
        oldest.set((utcnow() - first).total_seconds() if first is not None else 0)

    return refresh


def install_notification_metrics(app: FastAPI) -> None:
    app.state.metric_refreshers.append(
        outbox_refresher(app.state.metrics.registry, app.state.database)
    )
