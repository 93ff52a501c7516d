"""Structured logging: JSON in production, console in development, a request id per request.

No personal data is ever logged: log calls pass record ids, route templates, status codes
and error *types*, never names, dates of birth, identifiers, free text or exception
messages (which may quote input). ``tests/test_no_personal_data.py`` proves it.
"""

from __future__ import annotations

import logging
import re
import sys
import time
import uuid
from typing import Any

import structlog
from opentelemetry import trace
from starlette.types import ASGIApp, Message, Receive, Scope, Send

REQUEST_ID_HEADER = "x-request-id"
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{8,64}$")


def exception_type_only(_logger: Any, _name: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """Reduce any exception info to the exception's type.

    An exception's message and traceback (with local variables, in development) may hold
    the incident being processed; the type is all a log needs to point at the cause.
    """
    info = event_dict.pop("exc_info", None)
    event_dict.pop("exception", None)
    event_dict.pop("stack_info", None)
    if info:
        if info is True:
            info = sys.exc_info()
        if isinstance(info, BaseException):
            event_dict["error_type"] = type(info).__name__
        elif isinstance(info, tuple) and info[0] is not None:
            event_dict["error_type"] = info[0].__name__
    return event_dict


def add_trace_ids(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """With tracing on, each line carries the trace and span it was written in."""
    context = trace.get_current_span().get_span_context()
    if context.is_valid:
        event_dict["trace_id"] = format(context.trace_id, "032x")
        event_dict["span_id"] = format(context.span_id, "016x")
    return event_dict


# URL attributes the HTTP instrumentation sets from the raw path and query string (which
# hold record ids and, for searches, names and dates of birth): replaced by the route.
_URL_ATTRIBUTES = ("http.target", "http.url", "url.full", "url.path", "url.query")


def _label_span(scope: Scope, request_id: str, *, done: bool = False) -> None:
    """Tie the request's server span (if tracing is on) to its log lines, and keep
    identifiers out of it: its URL attributes become the route template (``done``: when
    the response starts, the route known and the span not yet ended)."""
    span = trace.get_current_span()
    if not span.is_recording():
        return
    if not done:
        span.set_attribute("triage.request_id", request_id)
        return
    route = route_template(scope)
    present = getattr(span, "attributes", None) or {}
    for key in _URL_ATTRIBUTES:
        if key in present:
            span.set_attribute(key, "" if key == "url.query" else route)


def configure_logging(*, json_logs: bool, level: str = "INFO") -> None:
    """Configure structlog and the standard library once, through ProcessorFormatter."""
    shared: list[Any] = [
        exception_type_only,
        structlog.contextvars.merge_contextvars,
        add_trace_ids,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer()
        if json_logs
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
    )
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    # Uvicorn's access log prints raw paths and query strings; ours prints route templates.
    for name in ("uvicorn.access",):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = False
        logging.getLogger(name).disabled = True
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []
        logging.getLogger(name).propagate = True


def route_template(scope: Scope) -> str:
    """The matched route's path template (``/v1/incidents/{incident_id}``), never the raw path."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return str(path) if path else "unmatched"


class RequestContextMiddleware:
    """Pure ASGI middleware: bind a request id, echo it back, and log one access line."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.log = structlog.get_logger("app.access")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = ""
        for key, value in scope.get("headers", ()):
            if key == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if _SAFE_REQUEST_ID.match(incoming) else uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = request_id
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=request_id)
        _label_span(scope, request_id)
        status = 500
        start = time.perf_counter()

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                _label_span(scope, request_id, done=True)
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((REQUEST_ID_HEADER.encode(), request_id.encode()))
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            self.log.info(
                "request",
                method=scope.get("method"),
                route=route_template(scope),
                status=status,
                duration_ms=round((time.perf_counter() - start) * 1000, 2),
            )
            structlog.contextvars.clear_contextvars()
