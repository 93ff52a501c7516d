"""Request body size limit, URLs free of control characters, security headers (pure ASGI)."""

from __future__ import annotations

import re

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.errors import BadRequest, BodyRejected, PayloadTooLarge, send_problem

SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
    (b"strict-transport-security", b"max-age=31536000; includeSubDomains"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
]

# The screens (/ui): scripts and styles from this service only (no inline script, no
# eval), forms post only here, and nothing may frame them.
SCREENS_CSP = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
)


class SecurityHeadersMiddleware:
    """Adds the security headers to every response, and drops ``Server``.

    A response that sets its own Content-Security-Policy keeps it (the API docs pages,
    app/ops/docs.py); the screens (``/ui``) get ``SCREENS_CSP``; every other response
    gets ``default-src 'none'``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        screens = path == "/ui" or path.startswith("/ui/")

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = [h for h in message.get("headers", []) if h[0] != b"server"]
                own = {name for name, _ in headers}
                for name, value in SECURITY_HEADERS:
                    if name == b"content-security-policy":
                        if name in own:
                            continue
                        value = SCREENS_CSP if screens else value
                    headers.append((name, value))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_wrapper)


class BodyLimitMiddleware:
    """Refuse bodies over the limit with a 413 problem, by header or while streaming.

    A chunked body has no length to check up front: the count runs as it arrives, and the
    read that crosses the limit raises ``BodyRejected`` (an ``HTTPException``, so FastAPI
    answers it with the 413 rather than its bare 400 for a failed body read).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", ()):
            if key == b"content-length":
                try:
                    too_big = int(value) > self.max_bytes
                except ValueError:
                    too_big = False
                if too_big:
                    await send_problem(send, PayloadTooLarge(self._detail()))
                    return
        received = 0
        response_started = False

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise BodyRejected(PayloadTooLarge(self._detail()))
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except BodyRejected as exc:
            if not response_started:
                await send_problem(send, exc.problem)

    def _detail(self) -> str:
        return f"The request body exceeds the limit of {self.max_bytes} bytes."


class ControlCharacterMiddleware:
    """Refuse a control character in the path or the query string (400).

    NUL cannot be stored at all (PostgreSQL refuses it) and no identifier, code or time
    holds a control character; tab, line feed and carriage return aside, as in a body, they
    are refused before any route sees them. Bodies are checked by ``app.requests``.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and (
            _ENCODED_CONTROL.search(scope.get("query_string", b""))
            or _CONTROL.search(scope.get("path", ""))
        ):
            await send_problem(send, BadRequest("The URL holds a control character."))
            return
        await self.app(scope, receive, send)


_ENCODED_CONTROL = re.compile(rb"%(?:0[0-8bBcCeEfF]|1[0-9a-fA-F]|7[fF])")
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
