"""FastAPI dependencies: authenticate every /v1 request and check its role.

Wrong or missing credentials → 401 (with ``WWW-Authenticate``); a valid principal whose
role may not call the operation → 403. Records outside a principal's scope are a
different matter, answered 404 by the policy (``app.auth.policy``) so that nothing
reveals whether they exist.
"""

from __future__ import annotations

from typing import Annotated

import structlog
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from app.auth.jwt import JwtVerifier, TokenError
from app.auth.keys import KEY_PREFIX, principal_for_key
from app.auth.principal import Principal
from app.auth.ratelimit import retry_after_header
from app.db import SessionDep
from app.errors import TooManyRequests, Unauthorized

WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

log = structlog.get_logger(__name__)

bearer = HTTPBearer(auto_error=False, description="An API key (`tri_…`) or a JWT.")


def authenticate(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
    session: SessionDep,
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        log.info("authentication_failed", reason="missing_credentials")
        raise Unauthorized("A bearer credential is required.", credential_sent=False)
    token = credentials.credentials
    principal: Principal | None = None
    if token.startswith(KEY_PREFIX):
        principal = principal_for_key(session, token)
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
    request.state.principal = principal
    structlog.contextvars.bind_contextvars(principal_role=principal.role)
    if request.method in WRITE_METHODS:
        wait = request.app.state.rate_limiter.hit(principal.id)
        if wait is not None:
            log.info("rate_limited", role=principal.role)
            raise TooManyRequests(
                "Too many writes from this credential; retry later.",
                headers={"Retry-After": retry_after_header(wait)},
            )
    return principal


CurrentPrincipal = Annotated[Principal, Depends(authenticate)]
