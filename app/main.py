"""Application factory: wires settings, database, middleware, error handlers and routers.

``create_app`` builds an application (tests and ``triage serve`` call it). The module also
has an ``app`` attribute, built from the environment's settings on first access, so that
``uvicorn app.main:app`` and ``fastapi run`` work; importing the module builds nothing.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio.to_thread
from anyio import CapacityLimiter
from fastapi import FastAPI
from opentelemetry.sdk.trace import SpanProcessor

from app.admin.router import router as admin_router
from app.assessments.router import router as assessments_router
from app.audit.metrics import install_audit_metrics
from app.audit.router import router as audit_router
from app.auth.jwt import JwtVerifier
from app.auth.keys import KeyCache
from app.auth.oidc import OidcClient
from app.auth.ratelimit import rate_limiter
from app.config import Settings, get_settings
from app.contract.items import INSTRUMENT_ITEMS
from app.db import Database
from app.errors import CatchAllMiddleware, install_error_handlers
from app.flags.metrics import install_flag_metrics
from app.flags.router import queue_router
from app.flags.router import router as flags_router
from app.intake.context import ScoringContext
from app.intake.router import router as incidents_router
from app.logging import RequestContextMiddleware, configure_logging
from app.notify.metrics import install_notification_metrics
from app.notify.router import router as notify_router
from app.openapi import document_enforced
from app.ops.admission import AdmissionMetrics, AdmissionMiddleware, Gate
from app.ops.docs import install_docs
from app.ops.maintenance import Maintenance
from app.ops.metrics import Metrics, MetricsMiddleware
from app.ops.middleware import (
    BodyLimitMiddleware,
    ControlCharacterMiddleware,
    SecurityHeadersMiddleware,
)
from app.ops.migrations import head_revisions
from app.ops.router import router as ops_router
from app.ops.tracing import install_tracing
from app.people.router import router as people_router
from app.reports.router import router as reports_router
from app.reports.whatif_router import router as whatif_router
from app.sharing.router import router as sharing_router
from app.ui.audit import router as audit_screens
from app.ui.flags import router as flags_screen
from app.ui.inbox import router as inbox_screen
from app.ui.incident import router as incident_screen
from app.ui.oidc import router as oidc_sign_in
from app.ui.person import router as person_screen
from app.ui.queue import router as queue_screen
from app.ui.reports import router as reports_screen
from app.ui.router import install_screens
from app.ui.search import router as search_screen

# Probes and metrics must answer during overload: they bypass admission control.
UNGATED_PATHS = ("/livez", "/readyz", "/metrics")

API_DESCRIPTION = """
Risk triage for domestic-abuse incidents: a transparent checklist score for the adult
victim and for every child, follow-up flags that agencies work through, and a
tamper-evident log of who saw and shared what.

Every `/v1` call needs `Authorization: Bearer <API key or JWT>`. Reads of personal data
state their purpose in `X-Purpose`. Errors are RFC 9457 `application/problem+json`.
"""


def create_app(
    settings: Settings | None = None,
    database: Database | None = None,
    *,
    span_processor: SpanProcessor | None = None,
) -> FastAPI:
    """The application. ``span_processor`` turns tracing on whatever the settings say
    (tests collect spans in memory with it)."""
    settings = settings or get_settings()
    configure_logging(json_logs=settings.json_logs, level=settings.log_level)
    database = database or Database(
        settings.effective_database_url, limits=settings.database_limits
    )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.shutting_down = False
        # Admitted requests use at most one worker thread each; keep room for them all.
        threads = anyio.to_thread.current_default_thread_limiter()
        threads.total_tokens = max(threads.total_tokens, settings.max_concurrent_requests + 8)
        maintenance = Maintenance(
            database, settings.maintenance_interval_seconds, settings.ui_session_idle
        )
        maintenance.start()
        yield
        # Uvicorn has stopped accepting connections and drained in-flight requests.
        app.state.shutting_down = True
        await anyio.to_thread.run_sync(maintenance.stop)
        await app.state.rate_limiter.close()
        if app.state.tracer_provider is not None:
            app.state.tracer_provider.shutdown()  # exports the spans still buffered
        database.dispose()

    app = FastAPI(
        title="DA risk-triage service",
        version="1.0.0",
        description=API_DESCRIPTION,
        lifespan=lifespan,
        # Served from the package by install_docs below, never from a CDN.
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json" if settings.docs_enabled else None,
    )
    # No redirects: a trailing-slash redirect would echo the caller's path in Location.
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.database = database
    app.state.metrics = Metrics()
    app.state.metric_refreshers = []
    app.state.migration_heads = head_revisions()
    app.state.jwt_verifier = JwtVerifier.from_settings(settings)
    # Sign-in to the screens through the force's OpenID Connect provider (None: off).
    app.state.oidc = OidcClient.from_settings(settings)
    # Loads and validates every checklist and rules file: a bad one stops start-up here.
    app.state.scoring = ScoringContext.load(settings)
    app.state.shutting_down = False
    # Names an error may quote besides the OpenAPI document's (app/openapi.py).
    app.state.extra_known_keys = frozenset(i for ids in INSTRUMENT_ITEMS.values() for i in ids)
    app.state.rate_limiter = rate_limiter(settings.write_rate_per_minute, settings.redis_url)
    app.state.key_cache = KeyCache(settings.api_key_cache_seconds)
    # Readiness and metrics use a thread of their own, never the requests' worker threads.
    app.state.probe_limiter = CapacityLimiter(1)
    gate = Gate(settings.max_concurrent_requests, settings.max_queued_requests)
    install_flag_metrics(app)
    install_audit_metrics(app)
    install_notification_metrics(app)

    install_error_handlers(app)
    document_enforced(app)
    if app.openapi_url is not None:
        install_docs(app, app.openapi_url)
    app.include_router(ops_router)
    app.include_router(incidents_router)
    app.include_router(assessments_router)
    app.include_router(flags_router)
    app.include_router(queue_router)
    app.include_router(sharing_router)
    app.include_router(people_router)
    app.include_router(audit_router)
    app.include_router(admin_router)
    app.include_router(notify_router)
    app.include_router(reports_router)
    app.include_router(whatif_router)
    install_screens(
        app,
        queue_screen,
        oidc_sign_in,
        incident_screen,
        person_screen,
        audit_screens,
        search_screen,
        flags_screen,
        inbox_screen,
        reports_screen,
    )

    # Off unless configured: a server span per request, a span per SQL statement.
    app.state.tracer_provider = install_tracing(app, settings, database, span_processor)

    # Outermost last: (tracing →) request id → metrics → security headers → admission → body limit →
    # control characters → catch-all → app.
    app.add_middleware(CatchAllMiddleware)
    app.add_middleware(ControlCharacterMiddleware)
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    app.add_middleware(
        AdmissionMiddleware,
        gate=gate,
        timeout=settings.queue_timeout_seconds,
        retry_after=settings.retry_after_seconds,
        exempt=UNGATED_PATHS,
        metrics=AdmissionMetrics(app.state.metrics.registry, gate),
    )
    app.add_middleware(SecurityHeadersMiddleware)
    app.add_middleware(MetricsMiddleware, metrics=app.state.metrics)
    app.add_middleware(RequestContextMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    """``app``: the application for the environment's settings, made once, when asked for
    (PEP 562), not when the module is imported."""
    if name == "app":
        built = create_app()
        globals()["app"] = built
        return built
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    # ``fastapi run`` looks for the application among the module's names.
    return sorted({*globals(), "app"})
