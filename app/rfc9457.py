"""Send a problem document straight from ASGI middleware (outside FastAPI's handlers)."""

from __future__ import annotations

import json

from starlette.types import Send

from app.errors import PROBLEM_MEDIA_TYPE, ProblemError


async def send_problem(send: Send, error: ProblemError) -> None:
    body = json.dumps(error.to_problem()).encode()
    headers = [
        (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
        (b"content-length", str(len(body)).encode()),
    ]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
