"""Shared request dependencies (``Annotated`` aliases used across routers)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, Request

from app.auth.deps import CurrentPrincipal
from app.errors import PurposeRequired


async def raw_body(request: Request) -> bytes:
    """The request body exactly as received (Starlette caches it for the JSON parser)."""
    return await request.body()


RawBody = Annotated[bytes, Depends(raw_body)]


async def require_purpose(
    request: Request,
    # Authenticate first: a caller without credentials gets 401, not a hint about headers.
    _principal: CurrentPrincipal,
    x_purpose: Annotated[
        str | None,
        Header(
            alias="X-Purpose",
            description="Why personal data is being read (kept in the audit log). Required.",
            max_length=200,
        ),
    ] = None,
) -> str:
    if x_purpose is None or not x_purpose.strip():
        raise PurposeRequired(
            "Reads of personal data must state their purpose in the X-Purpose header."
        )
    purpose = x_purpose.strip()
    request.state.purpose = purpose  # recorded with every audit event of this request
    return purpose


# For routes that need the header enforced but not its value.
REQUIRE_PURPOSE = Depends(require_purpose)
