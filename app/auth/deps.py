"""FastAPI dependencies: authenticate every /v1 request and check its role.

Wrong or missing credentials → 401 (with ``WWW-Authenticate``); a valid principal whose
role may not call the operation → 403. Records outside a principal's scope are a
different matter, answered 404 by the policy (``app.auth.policy``) so that nothing
reveals whether they exist.

Authentication runs on the event loop and holds nothing while it waits: a JWT is checked
in memory; an API key is found in the key cache, or looked up in a read-only unit of work
of its own on a worker thread, which commits and returns its connection before the
request goes on (app/db.py: a transaction never spans two worker-thread calls).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

import structlog
from fastapi import Depends, Header, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from app.auth.jwt import JwtVerifier, TokenError
from app.auth.keys import KEY_PREFIX, KeyCache, KeyLookup, hash_key, lookup_key
from app.auth.principal import Principal
from app.auth.ratelimit import retry_after_header
from app.contract.purposes import (
    PURPOSE_DESCRIPTION,
    PURPOSE_MAX_LENGTH,
    PURPOSE_PATTERN,
    PURPOSES,
    valid_purpose,
)
from app.db import Database, DatabaseDep
from app.errors import BadRequest, PurposeRequired, TooManyRequests, Unauthorized
from app.openapi import enforced

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = structlog.get_logger(__name__)

# Set only by the screens' in-process calls to this API (app/ui/api.py): the principal of
# a signed-in screen session. ASGI scope keys come from the server, never from a client.
INTERNAL_PRINCIPAL = "triage.screen_principal"

bearer = HTTPBearer(auto_error=False, description="An API key (`tri_…`) or a JWT.")


def _lookup(database: Database, secret: str) -> KeyLookup:
    with database.unit(read_only=True) as session:
        return lookup_key(session, secret)


async def principal_for_api_key(
    cache: KeyCache, database: Database, secret: str
) -> Principal | None:
    digest = hash_key(secret)
    now = time.monotonic()
    principal = cache.get(digest, now)
    if principal is not None:
        return principal
    generation = cache.generation
    found = await run_in_threadpool(_lookup, database, secret)
    if found.principal is not None:
        until = now + cache.ttl
        if found.expires_at is not None:
            left = (found.expires_at - datetime.now(UTC)).total_seconds()
            until = min(until, now + left)
        cache.put(digest, found.principal, until, generation)
    return found.principal


async def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    database: DatabaseDep,
) -> Principal:
    internal = request.scope.get(INTERNAL_PRINCIPAL)
    principal = (
        internal
        if isinstance(internal, Principal)
        else await _principal_of_credentials(request, credentials, database)
    )
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(principal_role=principal.role)
    if request.method in WRITE_METHODS:
        wait = await request.app.state.rate_limiter.hit(principal.id)
        if wait is not None:
            log.info("rate_limited", role=principal.role)
            raise TooManyRequests(
                "Too many writes from this credential; retry later.",
                headers={"Retry-After": retry_after_header(wait)},
            )
    return principal


async def _principal_of_credentials(
    request: Request, credentials: HTTPAuthorizationCredentials | None, database: Database
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        log.info("authentication_failed", reason="missing_credentials")
        raise Unauthorized("A bearer credential is required.", credential_sent=False)
    token = credentials.credentials
    principal: Principal | None = None
    if token.startswith(KEY_PREFIX):
        principal = await principal_for_api_key(request.app.state.key_cache, database, token)
        reason = "unknown_revoked_or_expired_key"
    else:
        verifier: JwtVerifier | None = request.app.state.jwt_verifier
        reason = "jwt_not_configured"
        if verifier is not None:
            try:
                principal = verifier.verify(token)
            except TokenError as exc:
                reason = str(exc).replace(" ", "_")
    if principal is None:
        # Never log the presented secret, nor a fragment of it.
        log.info("authentication_failed", reason=reason)
        raise Unauthorized("The credential is not valid.")
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]


async def raw_body(request: Request) -> bytes:
    """The request body exactly as received (Starlette caches it for the JSON parser)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


def _checked_purpose(value: str) -> str:
    purpose = value.strip()
    if not valid_purpose(purpose):
        # Never quote the header: free text there is what this check keeps out.
        raise BadRequest(
            f"X-Purpose must be one of {', '.join(PURPOSES)}, optionally followed by `:` and a "
            "case reference holding a digit (e.g. `marac:MARAC-2026-0147`).",
            errors=[{"loc": ["header", "X-Purpose"], "msg": "not a purpose code"}],
        )
    return purpose


async def require_purpose(
    request: Request,
    # Authenticate first: a caller without credentials gets 401, not a hint about headers.
    _principal: CurrentPrincipal,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Required (400 without it). " + PURPOSE_DESCRIPTION,
            max_length=PURPOSE_MAX_LENGTH,
            json_schema_extra=enforced(PURPOSE_PATTERN),
        ),
    ] = None,
) -> str:
    if x_purpose is None or not x_purpose.strip():
        raise PurposeRequired(
            "Reads of personal data must state their purpose in the X-Purpose header."
        )
    purpose = _checked_purpose(x_purpose)
    request.state.purpose = purpose  # recorded with every audit event of this request
    return purpose


# For routes that need the header enforced but not its value.
REQUIRE_PURPOSE = Depends(require_purpose)


async def capture_purpose(
    request: Request,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Optional on changes. " + PURPOSE_DESCRIPTION,
            max_length=PURPOSE_MAX_LENGTH,
            json_schema_extra={"pattern": PURPOSE_PATTERN},
        ),
    ] = None,
) -> None:
    """Record X-Purpose with the audit events of a change when the caller states one."""
    if x_purpose is not None and x_purpose.strip():
        request.state.purpose = _checked_purpose(x_purpose)


CAPTURE_PURPOSE = Depends(capture_purpose)
