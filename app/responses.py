"""JSON responses written once, with orjson.

A route that has already built its body as JSON (to digest it for the audit log, or to
store it for a replay) returns it through here: FastAPI then neither validates the body a
second time nor needs another worker-thread call to do it. The body comes from the same
pydantic model the OpenAPI document declares, or, on the hottest paths (the intake's
result, pages of flags), is built as the dict that model would dump, which tests check.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import orjson
from starlette.responses import Response

JSON_MEDIA_TYPE = "application/json"


def json_response(
    body: Any, status_code: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    if body is None:
        return Response(status_code=status_code, headers=dict(headers or {}))
    return Response(
        orjson.dumps(body),
        status_code=status_code,
        headers=dict(headers or {}),
        media_type=JSON_MEDIA_TYPE,
    )


def json_datetime(value: datetime) -> str:
    """A datetime as pydantic writes it in JSON: ISO 8601, UTC as ``Z``.

    For bodies built as JSON directly (the intake's, a page of flags) rather than through a
    model; tests hold them equal to the model's own output."""
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text
