"""Signing in to the screens through the force's OpenID Connect provider.

``GET /ui/sign-in/oidc`` starts: a new state, nonce and PKCE code verifier are kept on the
server (``app.auth.oidc_store``) and the browser is sent to the provider.
``GET /ui/sign-in/oidc/callback`` finishes: the pending sign-in is taken once, the code is
exchanged with the verifier, the ID token is verified, and its claims become the session's
principal exactly as a bearer JWT's would (``app.auth.oidc``).

Two cookies, both HttpOnly: a random browser binding (SameSite=Lax, path
``/ui/sign-in/oidc``, ten minutes) so that a callback link made in one browser signs nobody
in in another (login CSRF), and the session cookie of any sign-in. The callback answers
with a page that moves on at once (``<meta http-equiv="refresh">`` and a link) rather than a
redirect: the session cookie is SameSite=Strict, and a browser does not send it on a
redirect in a chain that began at the provider's site.

Only the outcome and the role are logged: never a code, token, state or claim.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import structlog
from fastapi import APIRouter, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from app.auth.oidc import OidcClient, OidcError, SignedIn, Started
from app.auth.oidc_store import PENDING_LIFETIME, PendingSignIn, save_pending, take_pending
from app.auth.sessions import start_session
from app.config import Settings
from app.db import Database, DatabaseDep
from app.ui.router import _set_cookie
from app.ui.web import (
    COOKIE_PATH,
    SESSION_COOKIE,
    SIGN_IN_COOKIE,
    ScreenError,
    new_token,
    render,
    safe_next,
)

log = structlog.get_logger(__name__)

router = APIRouter(prefix="/ui", include_in_schema=False)

BROWSER_COOKIE = "triage_oidc"
BROWSER_COOKIE_PATH = "/ui/sign-in/oidc"

# The provider's error codes (RFC 6749 §4.1.2.1, OpenID Connect Core §3.1.2.6) that are
# logged by name; any other value is logged as "other" (it is the caller's text).
PROVIDER_ERRORS = frozenset(
    {
        "access_denied",
        "invalid_request",
        "unauthorized_client",
        "unsupported_response_type",
        "invalid_scope",
        "server_error",
        "temporarily_unavailable",
        "interaction_required",
        "login_required",
        "account_selection_required",
        "consent_required",
    }
)

Param = Annotated[str | None, Query(max_length=2000)]

UNAVAILABLE = ScreenError(
    503,
    "The sign-in service cannot be reached",
    "Signing in with your force account is not working at the moment. Try again in a few "
    "minutes; if it goes on, tell your service desk.",
)


def _client(request: Request) -> OidcClient:
    client: OidcClient | None = getattr(request.app.state, "oidc", None)
    if client is None:
        raise ScreenError(404, "Sign-in with a force account is not available here")
    return client


def _save(database: Database, started: Started, browser: str, next_path: str) -> None:
    with database.unit() as session:
        save_pending(
            session,
            state=started.state,
            browser=browser,
            code_verifier=started.code_verifier,
            nonce=started.nonce,
            next_path=next_path,
        )


@router.get("/sign-in/oidc")
async def oidc_start(request: Request, database: DatabaseDep, next: Param = None) -> Response:
    client = _client(request)
    try:
        started = await client.start()
    except OidcError as exc:
        log.warning("oidc_sign_in_failed", reason=exc.reason)
        raise UNAVAILABLE from exc
    browser = new_token()
    await run_in_threadpool(_save, database, started, browser, safe_next(next))
    response = RedirectResponse(started.url, status_code=303)
    response.set_cookie(
        BROWSER_COOKIE,
        browser,
        max_age=int(PENDING_LIFETIME.total_seconds()),
        path=BROWSER_COOKIE_PATH,
        httponly=True,
        # Lax: sent when the provider sends the browser back (a top-level GET from its site).
        samesite="lax",
        secure=request.app.state.settings.ui_cookie_secure,
    )
    return response


def _take(database: Database, state: str, browser: str | None) -> PendingSignIn | None:
    with database.unit() as session:
        return take_pending(session, state=state, browser=browser)


def _open_session(database: Database, signed_in: SignedIn, settings: Settings) -> str:
    not_after = signed_in.id_token_expires_at if settings.oidc_session_until_token_expiry else None
    with database.unit() as session:
        return start_session(
            session,
            signed_in.principal,
            method="oidc",
            lifetime=timedelta(hours=settings.ui_session_hours),
            not_after=not_after,
        )


@router.get("/sign-in/oidc/callback")
async def oidc_callback(
    request: Request,
    database: DatabaseDep,
    state: Param = None,
    code: Param = None,
    error: Param = None,
) -> Response:
    client = _client(request)
    browser = request.cookies.get(BROWSER_COOKIE)
    # Taken (and so spent) whatever follows: a state is good for one callback only.
    pending = await run_in_threadpool(_take, database, state, browser) if state else None
    if error is not None:
        named = error if error in PROVIDER_ERRORS else "other"
        log.info("oidc_sign_in_refused", reason="provider_error", provider_error=named)
        if error == "access_denied":
            raise ScreenError(
                403,
                "You were not signed in",
                "Your force's sign-in service did not sign you in: the sign-in was cancelled, "
                "or your account may not use this service. Start again from the sign-in page, "
                "or ask your service desk for access.",
            )
        raise ScreenError(
            400,
            "You were not signed in",
            "Your force's sign-in service could not sign you in. Start again from the sign-in "
            "page; if it goes on, tell your service desk.",
        )
    if pending is None:
        log.info("oidc_sign_in_refused", reason="unknown, used or expired state")
        raise ScreenError(
            400,
            "This sign-in has expired",
            "The sign-in was not finished within ten minutes, was already used, or was started "
            "in another browser. Start again from the sign-in page.",
        )
    if not code:
        log.info("oidc_sign_in_refused", reason="no code")
        raise ScreenError(400, "You were not signed in", "Start again from the sign-in page.")
    try:
        signed_in = await client.finish(
            code=code, code_verifier=pending.code_verifier, nonce=pending.nonce
        )
    except OidcError as exc:
        log.info("oidc_sign_in_refused", reason=exc.reason)
        if exc.unavailable:
            raise UNAVAILABLE from exc
        raise ScreenError(
            403,
            "You could not be signed in",
            "Your force account was not accepted by this service. If you should have access, "
            "ask your service desk to check your account's role for the risk-triage service.",
        ) from exc
    settings: Settings = request.app.state.settings
    token = await run_in_threadpool(_open_session, database, signed_in, settings)
    log.info("screen_signed_in", method="oidc", role=signed_in.principal.role)
    response = render(request, "signed_in.html", {"next": pending.next_path})
    _set_cookie(request, response, SESSION_COOKIE, token, settings.ui_session_hours * 3600)
    response.delete_cookie(BROWSER_COOKIE, path=BROWSER_COOKIE_PATH)
    response.delete_cookie(SIGN_IN_COOKIE, path=COOKIE_PATH)
    return response
