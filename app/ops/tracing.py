"""OpenTelemetry tracing, off unless ``TRIAGE_TRACING_ENDPOINT`` is set.

When on, every request is a server span named by its route template (FastAPI
instrumentation) with a child span per SQL statement (SQLAlchemy instrumentation on this
application's engine), exported over OTLP/HTTP in batches. The tracer provider belongs
to the application (it is not installed globally), so tests and several applications in
one process do not share one; the lifespan flushes it at shutdown.

No personal data leaves in a span: ``RequestContextMiddleware`` (app/logging.py) replaces
the URL attributes with the route template (no path parameters, no query string, where
searches carry names and dates of birth) and adds ``triage.request_id``, the id in every
log line of the request, so a trace and its log lines are found from each other (log
lines also carry ``trace_id`` and ``span_id``). SQL spans carry statements with
placeholders, never bound values. Probes and ``/metrics`` are not traced.
"""

from __future__ import annotations

from fastapi import FastAPI
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor
from opentelemetry.instrumentation.sqlalchemy.engine import EngineTracer
from opentelemetry.metrics import NoOpMeterProvider
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import get_tracer

from app.config import Settings
from app.db import Database

UNTRACED = "livez,readyz,metrics"


def install_tracing(
    app: FastAPI,
    settings: Settings,
    database: Database,
    processor: SpanProcessor | None = None,
) -> TracerProvider | None:
    """Trace ``app`` and its database if tracing is configured (or ``processor`` is given,
    as tests do); returns the provider to shut down, or None when tracing is off."""
    if processor is None:
        if not settings.tracing_endpoint:
            return None
        exporter: SpanExporter = OTLPSpanExporter(endpoint=settings.tracing_endpoint)
        processor = BatchSpanProcessor(exporter)
    provider = TracerProvider(
        resource=Resource.create({SERVICE_NAME: settings.tracing_service_name}),
        sampler=ParentBased(TraceIdRatioBased(settings.tracing_sample_ratio)),
    )
    provider.add_span_processor(processor)
    FastAPIInstrumentor.instrument_app(
        app,
        tracer_provider=provider,
        excluded_urls=UNTRACED,
        exclude_spans=["receive", "send"],
    )
    # The engine's event hooks from the SQLAlchemy instrumentation, on this engine only:
    # its instrumentor would also patch `create_engine` for the whole process, once per
    # process, and declares SQLAlchemy < 2.1 (the hooks work on 2.1: the tests check the
    # SQL spans).
    EngineTracer(  # type: ignore[no-untyped-call]
        get_tracer(__name__, tracer_provider=provider),
        database.engine,
        NoOpMeterProvider().get_meter(__name__).create_up_down_counter("unused"),
        enable_commenter=False,
    )
    return provider
