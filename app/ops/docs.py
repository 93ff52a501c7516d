"""The interactive API docs, served offline: Swagger UI at ``/docs``, ReDoc at ``/redoc``.

Their scripts, styles and favicon come from the ``fastapi-offline`` package (Swagger UI 5,
ReDoc 2), mounted at ``/docs-static``. A police network without internet gets working
docs, and no page asks a CDN for anything: a CDN would otherwise learn who reads the docs
of this service, from where and when.

Each page carries its own Content-Security-Policy (``SecurityHeadersMiddleware`` keeps a
response's own policy): scripts only from this origin, plus on ``/docs`` the one inline
script that starts Swagger UI, allowed by its SHA-256, computed from the page as served
(it names the OpenAPI URL, which follows the root path). Never ``'unsafe-inline'`` for
scripts. Styles need ``'unsafe-inline'``: Swagger UI sets style attributes and ReDoc
injects ``<style>`` elements at run time (styled-components); a style cannot run code.
"""

from __future__ import annotations

import base64
import hashlib
import re
from pathlib import Path
from typing import Any

import fastapi_offline
from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

STATIC_URL = "/docs-static"
STATIC_DIRECTORY = Path(fastapi_offline.__file__).resolve().parent / "static"

# Swagger UI sends the OpenAPI document's URL to an online validator (and shows its
# badge) unless the page is on localhost: never, here.
SWAGGER_UI_PARAMETERS: dict[str, Any] = {
    "validatorUrl": None,
    "deepLinking": False,
    "defaultModelsExpandDepth": -1,
}

_COMMON = (
    "default-src 'none'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self' data:; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
# ReDoc runs its search index in a worker it builds from a blob: URL.
REDOC_CSP = f"script-src 'self'; worker-src blob:; {_COMMON}"

# Swagger UI's palette falls short of WCAG 2.2 AA contrast (4.5:1) in these places; the
# rest of its markup passes axe-core once deep links are off (a link nested in each
# operation's button, and too small a target).
SWAGGER_UI_STYLE = """
<style>
.swagger-ui .opblock .opblock-summary-method, .swagger-ui .info .title small pre { color: #000; }
.swagger-ui .info .base-url, .swagger-ui .info .url, .swagger-ui .info a { color: #1f5fa8; }
.swagger-ui .btn.authorize { color: #0b6b3a; border-color: #0b6b3a; }
.swagger-ui .btn.authorize svg { fill: #0b6b3a; }
.swagger-ui .json-schema-2020-12-expand-deep-button { color: #4a4a4a; }
</style>
"""

_INLINE_SCRIPT = re.compile(r"<script>(.*?)</script>", re.DOTALL)


def swagger_csp(html: str) -> str:
    """The policy for a Swagger UI page: its inline scripts by hash, nothing else inline."""
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(s.encode()).digest()).decode()}'"
        for s in _INLINE_SCRIPT.findall(html)
    )
    return f"script-src 'self' {hashes}; {_COMMON}"


def install_docs(app: FastAPI, openapi_url: str) -> None:
    """Add ``/docs``, ``/redoc`` and their static files (only when the docs are enabled)."""
    app.mount(STATIC_URL, StaticFiles(directory=STATIC_DIRECTORY), name="docs-static")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_swagger_ui_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - Swagger UI",
            swagger_js_url=f"{root}{STATIC_URL}/swagger-ui-bundle.js",
            swagger_css_url=f"{root}{STATIC_URL}/swagger-ui.css",
            swagger_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
        )
        html = _with_language(bytes(page.body).decode())
        html = html.replace("</head>", f"{SWAGGER_UI_STYLE}</head>", 1)
        return HTMLResponse(html, headers={"Content-Security-Policy": swagger_csp(html)})

    @app.get("/redoc", include_in_schema=False)
    async def redoc(request: Request) -> HTMLResponse:
        root = request.scope.get("root_path", "")
        page = get_redoc_html(
            openapi_url=f"{root}{openapi_url}",
            title=f"{app.title} - ReDoc",
            redoc_js_url=f"{root}{STATIC_URL}/redoc.standalone.js",
            redoc_favicon_url=f"{root}{STATIC_URL}/favicon.png",
            with_google_fonts=False,
        )
        html = _with_language(bytes(page.body).decode())
        return HTMLResponse(html, headers={"Content-Security-Policy": REDOC_CSP})


def _with_language(html: str) -> str:
    """FastAPI's pages name no language: screen readers would guess it."""
    return html.replace("<html>", '<html lang="en">', 1)
