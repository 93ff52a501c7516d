"""The browser screens under ``/ui``: sign-in, the purpose of a visit, and the screens.

Server-rendered HTML (Jinja2) with htmx, both served from this package: no CDN and no
build step. Reading works with JavaScript off; htmx only refreshes parts of a page.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from urllib.parse import quote

import structlog
from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from app.auth.keys import lookup_key
from app.auth.sessions import ScreenUser, end_session, set_purpose, start_session
from app.contract.purposes import valid_purpose
from app.db import Database, DatabaseDep
from app.ui.web import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    CurrentUser,
    Form,
    ScreenError,
    SignInRequired,
    new_token,
    redirect,
    render,
    safe_next,
    sign_in_redirect,
)

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/ui", include_in_schema=False)
STATIC = Path(__file__).parent / "static"

HOME_OF_ROLE = {
    "triage": "/ui/queue",
    "agency": "/ui/inbox",
    "auditor": "/ui/search",
    "partnership": "/ui/reports",
}


@router.get("/")
def home(request: Request, user: CurrentUser) -> Response:
    target = HOME_OF_ROLE.get(user.principal.role)
    if target is not None:
        return redirect(target)
    return render(request, "home.html")


# --------------------------------------------------------------------------- sign-in


def _set_cookie(request: Request, response: Response, name: str, value: str, age: int) -> None:
    response.set_cookie(
        name,
        value,
        max_age=age,
        path=COOKIE_PATH,
        httponly=True,
        samesite="strict",
        secure=request.app.state.settings.ui_cookie_secure,
    )


@router.get("/sign-in")
def sign_in_page(request: Request, next: str | None = None) -> Response:
    token = request.cookies.get(SIGN_IN_COOKIE) or new_token()
    response = render(
        request,
        "sign_in.html",
        {
            "sign_in_token": token,
            "next": safe_next(next),
            "key_sign_in": request.app.state.settings.ui_key_sign_in,
            "oidc": getattr(request.app.state, "oidc", None) is not None,
        },
    )
    _set_cookie(request, response, SIGN_IN_COOKIE, token, 3600)
    return response


def _open_session(database: Database, secret: str, settings_hours: int) -> str | None:
    with database.unit() as session:
        found = lookup_key(session, secret)
        if found.principal is None:
            return None
        return start_session(
            session,
            found.principal,
            method="api_key",
            lifetime=timedelta(hours=settings_hours),
            not_after=found.expires_at,
        )


@router.post("/sign-in")
async def sign_in(request: Request, database: DatabaseDep) -> Response:
    settings = request.app.state.settings
    form = await request.form()
    presented = form.get("csrf_token")
    expected = request.cookies.get(SIGN_IN_COOKIE)
    next_path = safe_next(str(form.get("next") or ""))
    if not expected or not isinstance(presented, str) or presented != expected:
        raise ScreenError(403, "This form has expired", "Reload the page and try again.")
    if not settings.ui_key_sign_in:
        raise ScreenError(404, "Sign-in with an API key is not available here")
    secret = form.get("api_key")
    token = None
    if isinstance(secret, str) and secret.strip():
        token = await run_in_threadpool(
            _open_session, database, secret.strip(), settings.ui_session_hours
        )
    if token is None:
        log.info("screen_sign_in_failed")
        page = render(
            request,
            "sign_in.html",
            {
                "sign_in_token": expected,
                "next": next_path,
                "key_sign_in": True,
                "oidc": getattr(request.app.state, "oidc", None) is not None,
                "error": "That key is not valid, or it has expired or been revoked.",
            },
            status_code=401,
        )
        return page
    log.info("screen_signed_in", method="api_key")
    response = redirect(next_path)
    _set_cookie(request, response, SESSION_COOKIE, token, settings.ui_session_hours * 3600)
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return response


def _end(database: Database, token: str | None) -> None:
    with database.unit() as session:
        end_session(session, token)


@router.post("/sign-out")
async def sign_out(request: Request, _form: Form, database: DatabaseDep) -> Response:
    await run_in_threadpool(_end, database, request.cookies.get(SESSION_COOKIE))
    response = redirect("/ui/sign-in")
    response.delete_cookie(SESSION_COOKIE, path=COOKIE_PATH)
    return response


# --------------------------------------------------------------------------- purpose


@router.get("/purpose")
def purpose_page(request: Request, _user: CurrentUser, next: str | None = None) -> Response:
    return render(request, "purpose.html", {"next": safe_next(next)})


def _store_purpose(database: Database, user: ScreenUser, purpose: str) -> None:
    with database.unit() as session:
        set_purpose(session, user.session_id, purpose)


@router.post("/purpose")
async def choose_purpose(
    request: Request, user: CurrentUser, form: Form, database: DatabaseDep
) -> Response:
    code = form.get("purpose", "")
    case = form.get("case_reference", "").strip()
    purpose = f"{code}:{case}" if case else code
    if not valid_purpose(purpose):
        return render(
            request,
            "purpose.html",
            {
                "next": safe_next(form.get("next")),
                "error": "Choose a purpose. A case reference may hold letters, digits and "
                "/ . _ - with at least one digit (a reference, never a name).",
            },
            status_code=400,
        )
    await run_in_threadpool(_store_purpose, database, user, purpose)
    return redirect(safe_next(form.get("next")))


# --------------------------------------------------------------------------- wiring


def install_screens(app: FastAPI, *routers: APIRouter) -> None:
    app.mount("/ui/static", StaticFiles(directory=STATIC), name="ui-static")
    app.include_router(router)
    for extra in routers:
        app.include_router(extra)

    @app.get("/ui", include_in_schema=False)
    def _ui_root() -> Response:
        return redirect("/ui/")

    # The service's own address leads people to the screens (clients use /v1, /docs).
    @app.get("/", include_in_schema=False)
    def _root() -> Response:
        return redirect("/ui/")

    @app.exception_handler(SignInRequired)
    async def _sign_in(request: Request, _exc: SignInRequired) -> Response:
        user: ScreenUser | None = getattr(request.state, "screen_user", None)
        if user is not None and not user.purpose:
            here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
            return redirect(f"/ui/purpose?next={quote(safe_next(here))}")
        return sign_in_redirect(request)

    @app.exception_handler(ScreenError)
    async def _screen_error(request: Request, exc: ScreenError) -> HTMLResponse:
        return render(
            request,
            "error.html",
            {"title": exc.title, "detail": exc.detail, "status": exc.status},
            status_code=exc.status,
        )
