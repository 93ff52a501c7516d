"""What every screen shares: templates, the signed-in user, CSRF checks, error pages.

Sessions live on the server (``app.auth.sessions``); the browser holds an opaque token in
an HttpOnly, SameSite=Strict cookie scoped to ``/ui`` (Secure outside development and
test). Every state-changing form carries the session's CSRF token (synchroniser token
pattern), checked in constant time, and a POST from another origin is refused whatever
it carries.
"""

from __future__ import annotations

import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit
from zoneinfo import ZoneInfo

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from starlette.concurrency import run_in_threadpool

from app.auth.sessions import ScreenUser, find_session
from app.contract.purposes import PURPOSES
from app.db import Database, DatabaseDep
from app.ui.api import ApiReply, ScreenApi

SESSION_COOKIE = "triage_session"
# Before sign-in: the sign-in form's own CSRF token (double-submit cookie).
SIGN_IN_COOKIE = "triage_sign_in"
COOKIE_PATH = "/ui"
LONDON = ZoneInfo("Europe/London")

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")

LEVEL_WORDS = {
    "standard": "Standard",
    "medium": "Medium",
    "high": "High",
    "moderate": "Moderate",
    "moderate_to_serious": "Moderate to serious",
    "serious": "Serious",
    "severe": "Severe",
}
# Rank on each ladder: the badge's style (colour, border and a shape) follows the rank,
# and the word is always written, so no information is carried by colour alone.
LEVEL_RANK = {
    "standard": 1,
    "medium": 2,
    "high": 3,
    "moderate": 1,
    "moderate_to_serious": 2,
    "serious": 3,
    "severe": 4,
}


def words(value: object) -> str:
    """An API code as words: ``moderate_to_serious`` → ``Moderate to serious``."""
    if value is None:
        return "—"
    text = str(value)
    return LEVEL_WORDS.get(text) or text.replace("_", " ").capitalize()


def when(value: object, style: str = "datetime") -> str:
    """An ISO timestamp from the API, in London time, the way people write it."""
    if not isinstance(value, str) or not value:
        return "—"
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return value
    if moment.tzinfo is None:
        return moment.strftime("%-d %b %Y")
    local = moment.astimezone(LONDON)
    if style == "date":
        return local.strftime("%-d %b %Y")
    return local.strftime("%-d %b %Y %H:%M")


def is_overdue(value: object, status: object = None) -> bool:
    if not isinstance(value, str) or status in ("done", "not_required"):
        return False
    try:
        due = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return due.tzinfo is not None and due < datetime.now(UTC)


templates.env.filters["words"] = words
templates.env.filters["when"] = when
templates.env.globals["level_rank"] = LEVEL_RANK
templates.env.globals["is_overdue"] = is_overdue
templates.env.globals["purposes"] = PURPOSES


# --------------------------------------------------------------------------- errors


class SignInRequired(Exception):
    def __init__(self, next_path: str) -> None:
        super().__init__("sign-in required")
        self.next_path = next_path


class ScreenError(Exception):
    """Shown as a page with this status; the message is ours, never the caller's input."""

    def __init__(self, status: int, title: str, detail: str | None = None) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.detail = detail

    @classmethod
    def of(cls, reply: ApiReply) -> ScreenError:
        problem = reply.problem
        return cls(reply.status, str(problem.get("title", "Error")), problem.get("detail"))


def safe_next(value: str | None) -> str:
    """Where to go after sign-in: a path of the screens only (never another site)."""
    if not value:
        return "/ui/"
    parts = urlsplit(value)
    if parts.scheme or parts.netloc or not parts.path.startswith("/ui/") or "\\" in value:
        return "/ui/"
    return parts.path + (f"?{parts.query}" if parts.query else "")


def sign_in_redirect(request: Request) -> RedirectResponse:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/ui/sign-in?next={quote(safe_next(here))}", status_code=303)


# --------------------------------------------------------------------------- the user


def _find(database: Database, token: str, request: Request) -> ScreenUser | None:
    settings = request.app.state.settings
    with database.unit() as session:
        return find_session(session, token, idle=settings.ui_session_idle)


async def optional_user(request: Request, database: DatabaseDep) -> ScreenUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token:
        return None
    user = await run_in_threadpool(_find, database, token, request)
    request.state.screen_user = user
    return user


async def require_user(
    request: Request, user: Annotated[ScreenUser | None, Depends(optional_user)]
) -> ScreenUser:
    if user is None:
        raise SignInRequired(request.url.path)
    return user


CurrentUser = Annotated[ScreenUser, Depends(require_user)]


def require_purpose(user: ScreenUser, request: Request) -> None:
    """Personal data is shown only once a purpose is chosen (it goes into the audit log)."""
    if not user.purpose:
        raise SignInRequired(request.url.path)  # handled: sends to the purpose page


def api(request: Request, user: ScreenUser) -> ScreenApi:
    return ScreenApi(request, user)


# --------------------------------------------------------------------------- forms


def _same_origin(request: Request) -> bool:
    origin = request.headers.get("origin")
    if origin is None:
        return True  # not a browser: the CSRF token is the check
    if origin == "null":
        # Our pages are served with Referrer-Policy: no-referrer, under which browsers send
        # "Origin: null" on every POST, even to their own origin (Fetch standard, "append a
        # request Origin header"). "null" is also what an opaque origin (a sandboxed frame,
        # a data: URL) sends: the browser's own Sec-Fetch-Site tells the two apart.
        return request.headers.get("sec-fetch-site") == "same-origin"
    host = request.headers.get("host", "")
    return urlsplit(origin).netloc == host


async def checked_form(request: Request, user: CurrentUser) -> dict[str, str]:
    """The posted form of a signed-in user, after the CSRF and origin checks."""
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    presented = fields.pop("csrf_token", None) or request.headers.get("x-csrf-token")
    if not _same_origin(request) or not user.csrf_matches(presented):
        raise ScreenError(403, "This form has expired", "Reload the page and try again.")
    return fields


Form = Annotated[dict[str, str], Depends(checked_form)]


def new_token() -> str:
    return secrets.token_urlsafe(32)


# What an Idempotency-Key drawn by a form looks like (new_token: URL-safe base64).
_FORM_KEY = re.compile(r"^[A-Za-z0-9_-]{16,100}$")


def form_key(value: str | None) -> dict[str, str]:
    """A form's Idempotency-Key as a header (none if the form did not carry a valid one).

    Every form that writes carries a key drawn when it was rendered (``new_form_key`` in
    the templates), so the API answers a double submit with the first result.
    """
    value = (value or "").strip()
    if value and _FORM_KEY.match(value):
        return {"Idempotency-Key": value}
    return {}


templates.env.globals["new_form_key"] = new_token


# --------------------------------------------------------------------------- pages


NAV: dict[str, list[tuple[str, str]]] = {
    "triage": [("Queue", "/ui/queue"), ("Search", "/ui/search")],
    "agency": [("Inbox", "/ui/inbox")],
    "auditor": [("Search", "/ui/search"), ("Audit log", "/ui/audit"), ("Reports", "/ui/reports")],
    "partnership": [("Reports", "/ui/reports")],
    "admin": [],
    "submitter": [],
}


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    user: ScreenUser | None = None,
) -> HTMLResponse:
    user = user or getattr(request.state, "screen_user", None)
    values: dict[str, Any] = {
        "user": user,
        "principal": user.principal if user else None,
        "csrf_token": user.csrf_token if user else "",
        "nav": NAV.get(user.principal.role, []) if user else [],
        "here": request.url.path,
    }
    values.update(context or {})
    return templates.TemplateResponse(request, template, values, status_code=status_code)


def redirect(path: str) -> Response:
    return RedirectResponse(path, status_code=303)
