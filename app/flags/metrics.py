"""The overdue-flags gauge on ``/metrics``: open flags past their due time, by type and agency.

Labels are flag types and agencies only (two closed vocabularies), never ids, areas or
anything about a person. The gauge is set from one ``GROUP BY`` when ``/metrics`` renders
(``app.state.metric_refreshers``); a pair that has no overdue flags any more is set to 0
rather than dropped, so its series does not vanish.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog
from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge
from sqlalchemy.orm import Session

from app.db import Database, utcnow
from app.flags import repository
from app.flags.vocabulary import AGENCIES, FLAG_TYPES

log = structlog.get_logger(__name__)

OTHER = "other"  # a type or agency outside the contract's vocabulary (never expected)


def overdue_refresher(registry: CollectorRegistry, database: Database) -> Callable[[], None]:
    gauge = Gauge(
        "triage_flags_overdue",
        "Open flags past their due time, by flag type and agency.",
        ["type", "agency"],
        registry=registry,
    )
    seen: set[tuple[str, str]] = set()

    def refresh() -> None:
        try:
            with database.engine.connect() as conn:
                # A read only: on SQLite, never queue for the write lock.
                conn = conn.execution_options(sqlite_begin="DEFERRED")
                with Session(bind=conn) as session:
                    rows = repository.overdue_by_type_and_agency(session, utcnow())
        except Exception as exc:  # the metrics page must render without the database
            log.warning("overdue_gauge_not_refreshed", error_type=type(exc).__name__)
            return
        counts: dict[tuple[str, str], int] = {}
        for flag_type, agency, n in rows:
            key = (
                flag_type if flag_type in FLAG_TYPES else OTHER,
                agency if agency in AGENCIES else OTHER,
            )
            counts[key] = counts.get(key, 0) + n
        for key in seen - counts.keys():
            gauge.labels(*key).set(0)
        for key, n in counts.items():
            gauge.labels(*key).set(n)
        seen.update(counts)

    return refresh


def install_flag_metrics(app: FastAPI) -> None:
    """Register the overdue gauge's refresher (called once by the application factory)."""
    app.state.metric_refreshers.append(
        overdue_refresher(app.state.metrics.registry, app.state.database)
    )
