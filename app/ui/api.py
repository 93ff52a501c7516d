"""The screens call the service's own HTTP API, in process, as the signed-in principal.

A screen never reads or writes the database itself: every page is made from the answers
of the same ``/v1`` routes that clients use, so the authorisation policy, the object scope
(404 for what a principal may not see), ``If-Match``, idempotency and the audit log (a
``consult`` with the purpose chosen on screen, a ``disclose`` when an agency reads) are
exactly the API's. The call goes through the whole application, middleware included,
with the principal in an ASGI scope key that only in-process callers can set
(``app.auth.deps.INTERNAL_PRINCIPAL``); it runs within the screen request's admission
slot and in a copy of its logging context.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import Message

from app.auth.deps import INTERNAL_PRINCIPAL
from app.auth.sessions import ScreenUser

Params = Mapping[str, str | int | Sequence[str] | None]


@dataclass(frozen=True)
class ApiReply:
    status: int
    headers: Headers
    body: bytes

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None

    @property
    def problem(self) -> dict[str, Any]:
        """The RFC 9457 problem of a failed call (its title and detail never echo input)."""
        data = self.json() if self.headers.get("content-type", "").endswith("json") else None
        return data if isinstance(data, dict) else {"title": "Error", "status": self.status}


class ScreenApi:
    def __init__(self, request: Request, user: ScreenUser) -> None:
        self.request = request
        self.user = user

    async def get(self, path: str, params: Params | None = None, **kw: Any) -> ApiReply:
        return await self.call("GET", path, params=params, **kw)

    async def post(self, path: str, body: Any, **kw: Any) -> ApiReply:
        return await self.call("POST", path, body=body, **kw)

    async def call(
        self,
        method: str,
        path: str,
        *,
        params: Params | None = None,
        body: Any = None,
        purpose: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> ApiReply:
        query = urlencode(
            [(k, v) for k, v in (params or {}).items() if v not in (None, "")], doseq=True
        )
        raw_headers: list[tuple[bytes, bytes]] = [(b"accept", b"application/json")]
        stated = purpose or self.user.purpose
        if stated:
            raw_headers.append((b"x-purpose", stated.encode()))
        outer_id = getattr(self.request.state, "request_id", None)
        if outer_id:
            raw_headers.append((b"x-request-id", str(outer_id).encode()))
        payload = b""
        if body is not None:
            payload = json.dumps(body).encode()
            raw_headers.append((b"content-type", b"application/json"))
            raw_headers.append((b"content-length", str(len(payload)).encode()))
        for name, value in (headers or {}).items():
            raw_headers.append((name.lower().encode(), value.encode()))
        scope: dict[str, Any] = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": method,
            "scheme": self.request.url.scheme,
            "path": path,
            "raw_path": path.encode(),
            "root_path": "",
            "query_string": query.encode(),
            "headers": raw_headers,
            "client": self.request.scope.get("client"),
            "server": self.request.scope.get("server"),
            "state": {},  # the inner request's own state, never the screen request's
            INTERNAL_PRINCIPAL: self.user.principal,
        }
        sent = False

        async def receive() -> Message:
            nonlocal sent
            if sent:
                return {"type": "http.disconnect"}
            sent = True
            return {"type": "http.request", "body": payload, "more_body": False}

        status = 500
        reply_headers: list[tuple[bytes, bytes]] = []
        chunks: list[bytes] = []

        async def send(message: Message) -> None:
            nonlocal status, reply_headers
            if message["type"] == "http.response.start":
                status = message["status"]
                reply_headers = list(message.get("headers", []))
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        app = self.request.app
        # A context of its own: the inner request binds its own logging context variables.
        await asyncio.create_task(app(scope, receive, send), context=contextvars.copy_context())
        return ApiReply(status, Headers(raw=reply_headers), b"".join(chunks))
