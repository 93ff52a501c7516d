"""RFC 9457 problem details for every error the service returns.

A small hierarchy of our own: each error class carries its status, a stable ``type`` URI
and a title. ``detail`` is written by us and never contains personal data; validation
errors list locations and messages, never the rejected values.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

import structlog
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.exc import DataError, DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.db import DatabaseBusy
from app.openapi import known_keys

PROBLEM_MEDIA_TYPE = "application/problem+json"
TYPE_BASE = "https://da-triage.example/problems/"

log = structlog.get_logger(__name__)


class ValidationIssue(BaseModel):
    loc: list[str | int]
    msg: str


class Problem(BaseModel):
    """An RFC 9457 problem details object."""

    model_config = ConfigDict(extra="allow")

    type: str = Field(examples=[TYPE_BASE + "validation"])
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    errors: list[ValidationIssue] | None = None


class ProblemError(Exception):
    """Base class: raise a subclass anywhere to answer with a problem document."""

    status: int = 500
    slug: str = "internal"
    title: str = "Internal server error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        headers: Mapping[str, str] | None = None,
        **extensions: Any,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail
        self.headers = dict(headers or {})
        self.extensions = extensions

    def to_problem(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": TYPE_BASE + self.slug,
            "title": self.title,
            "status": self.status,
        }
        if self.detail:
            body["detail"] = self.detail
        if instance:
            body["instance"] = instance
        body.update(self.extensions)
        return body


class BadRequest(ProblemError):
    status, slug, title = 400, "bad-request", "Bad request"


class PurposeRequired(ProblemError):
    status, slug, title = 400, "purpose-required", "X-Purpose header required"


class Unauthorized(ProblemError):
    status, slug, title = 401, "unauthorized", "Authentication required"

    def __init__(
        self, detail: str | None = None, *, credential_sent: bool = True, **extensions: Any
    ) -> None:
        # RFC 6750 §3.1: no error code when the request carried no credential at all.
        challenge = 'Bearer error="invalid_token"' if credential_sent else "Bearer"
        super().__init__(detail, headers={"WWW-Authenticate": challenge}, **extensions)


class Forbidden(ProblemError):
    status, slug, title = 403, "forbidden", "Not allowed for this role"


class NotFound(ProblemError):
    status, slug, title = 404, "not-found", "Not found"


class MethodNotAllowed(ProblemError):
    status, slug, title = 405, "method-not-allowed", "Method not allowed"


class Conflict(ProblemError):
    status, slug, title = 409, "conflict", "Conflict"


class Gone(ProblemError):
    status, slug, title = 410, "gone", "Erased"


class PreconditionFailed(ProblemError):
    status, slug, title = 412, "precondition-failed", "Precondition failed"


class PayloadTooLarge(ProblemError):
    status, slug, title = 413, "payload-too-large", "Request body too large"


class UnsupportedMediaType(ProblemError):
    status, slug, title = 415, "unsupported-media-type", "Unsupported media type"


class Unprocessable(ProblemError):
    status, slug, title = 422, "validation", "Request validation failed"

    def __init__(
        self, detail: str | None = None, *, errors: Sequence[Mapping[str, Any]] = (), **ext: Any
    ) -> None:
        super().__init__(detail, **ext)
        if errors:
            self.extensions["errors"] = [dict(e) for e in errors]


class PreconditionRequired(ProblemError):
    status, slug, title = 428, "precondition-required", "If-Match header required"


class TooManyRequests(ProblemError):
    status, slug, title = 429, "rate-limited", "Too many requests"


class ServiceUnavailable(ProblemError):
    status, slug, title = 503, "unavailable", "Service temporarily unavailable"


class BodyRejected(HTTPException):
    """A ``ProblemError`` raised while the body is read or parsed.

    FastAPI turns any other exception from that step into a bare 400 ("There was an error
    parsing the body"); an ``HTTPException`` passes through, and its handler answers with
    the problem it carries.
    """

    def __init__(self, problem: ProblemError) -> None:
        super().__init__(problem.status, problem.detail, problem.headers or None)
        self.problem = problem


async def send_problem(send: Send, error: ProblemError) -> None:
    """Send a problem document straight from ASGI middleware (outside FastAPI's handlers)."""
    body = json.dumps(error.to_problem()).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def problem_response(
    status: int, body: Mapping[str, Any], headers: Mapping[str, str] | None = None
) -> JSONResponse:
    return JSONResponse(
        dict(body), status_code=status, media_type=PROBLEM_MEDIA_TYPE, headers=dict(headers or {})
    )


# A client-chosen key is echoed only if the API itself defines that name
# (``app.openapi.known_keys``); anything else (a key that is really someone's name, say)
# is replaced.
UNRECOGNISED_KEY = "<unrecognised key>"
_QUOTED = re.compile(r"`[^`]*`")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def safe_key(key: Any, known: frozenset[str]) -> str | int:
    if isinstance(key, int):
        return key
    text = str(key)
    return text if text in known else UNRECOGNISED_KEY


def _validation_issues(errors: Sequence[Any], known: frozenset[str]) -> list[dict[str, Any]]:
    # Never echo the input: the rejected value may be a name or a date of birth, and a
    # key the client chose may be one too.
    issues = []
    for err in errors:
        raw_loc = err.get("loc", ())
        loc = [safe_key(p, known) for p in raw_loc if p != "body" or len(raw_loc) == 1]
        # Pydantic quotes a character it found (`found \`x\` at 0`): never send it back.
        msg = _QUOTED.sub("`…`", str(err.get("msg", "invalid")))
        issues.append({"loc": loc, "msg": _CONTROL.sub("", msg)})
    return issues


_STATUS_TO_ERROR: dict[int, type[ProblemError]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    405: MethodNotAllowed,
    409: Conflict,
    410: Gone,
    412: PreconditionFailed,
    413: PayloadTooLarge,
    415: UnsupportedMediaType,
    422: Unprocessable,
    428: PreconditionRequired,
    429: TooManyRequests,
    503: ServiceUnavailable,
}


def allowed_methods(request: Request) -> str:
    """Every method the API serves at this path (RFC 9110 §15.5.6: ``Allow`` on a 405),
    read from the OpenAPI document: Starlette names only the methods of the first route
    that matched the path, though a path often has one route per method (GET and POST of
    /v1/admin/keys)."""
    path = request.url.path
    methods: set[str] = set()
    for template, operations in request.app.openapi().get("paths", {}).items():
        pattern = "^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template)) + "$"
        if re.match(pattern, path):
            methods |= {m.upper() for m in operations}
    return ", ".join(sorted(methods))


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ProblemError)
    async def _problem(_request: Request, exc: ProblemError) -> JSONResponse:
        return problem_response(exc.status, exc.to_problem(), exc.headers)

    @app.exception_handler(BodyRejected)
    async def _body(_request: Request, exc: BodyRejected) -> JSONResponse:
        return problem_response(exc.status_code, exc.problem.to_problem(), exc.problem.headers)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        err = Unprocessable(
            "The request did not match the schema.",
            errors=_validation_issues(exc.errors(), known_keys(request.app)),
        )
        return problem_response(err.status, err.to_problem())

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        headers = dict(exc.headers or {})
        if exc.status_code == 405:
            headers["Allow"] = allowed_methods(request)
        cls = _STATUS_TO_ERROR.get(exc.status_code)
        if cls is None:
            body = {
                "type": "about:blank",
                "title": "HTTP error",
                "status": exc.status_code,
            }
            return problem_response(exc.status_code, body, headers)
        # Starlette's own details ("Not Found") carry no personal data.
        err = cls()
        return problem_response(err.status, err.to_problem(), headers)

    # A bounded wait that ran out (a lock, a statement, the pool, SQLite's writer turn) or
    # a database that cannot be reached: the unit of work rolled back, so nothing was
    # saved, and the client may retry.
    @app.exception_handler(OperationalError)
    @app.exception_handler(PoolTimeoutError)
    @app.exception_handler(DatabaseBusy)
    async def _db_unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_unavailable", error_type=type(exc).__name__)
        err = ServiceUnavailable(
            "The database is busy or not reachable; nothing was saved. Retry later."
        )
        retry_after = str(getattr(request.app.state.settings, "retry_after_seconds", 2))
        return problem_response(err.status, err.to_problem(), {"Retry-After": retry_after})

    # The last line of defence behind validation: the database refused a value (out of
    # its range, or a character it cannot hold). The unit of work rolled back.
    @app.exception_handler(DataError)
    async def _data_error(_request: Request, exc: Exception) -> JSONResponse:
        log.warning("database_refused_value", error_type=type(exc).__name__)
        err = Unprocessable(
            "A value in the request cannot be stored or compared (out of range, or a "
            "character the database refuses); nothing was saved."
        )
        return problem_response(err.status, err.to_problem())

    @app.exception_handler(DBAPIError)
    async def _database_error(_request: Request, exc: Exception) -> JSONResponse:
        log.error("database_error", error_type=type(exc).__name__)
        err = ProblemError("An unexpected error occurred; nothing was saved.")
        return problem_response(err.status, err.to_problem())


class CatchAllMiddleware:
    """Turn any unhandled exception into a 500 problem, logging only the exception's type.

    Starlette's own handler for ``Exception`` re-raises after responding, and the server
    then logs the traceback (message and local variables: the incident itself). This
    middleware sits inside it and never re-raises.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:
            log.error("unhandled_error", error_type=type(exc).__name__)
            if not started:
                await send_problem(
                    send, ProblemError("An unexpected error occurred; nothing was saved.")
                )


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries documenting problem+json for the given statuses."""
    out: dict[int | str, dict[str, Any]] = {}
    for status in statuses:
        cls = _STATUS_TO_ERROR.get(status, ProblemError)
        out[status] = {
            "description": cls.title if status != 500 else "Internal server error",
            "model": Problem,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/Problem"}}},
        }
    return out


# Every /v1 route can answer these.
COMMON_PROBLEMS = (400, 401, 403, 404, 413, 422, 429, 500, 503)
