"""Working a flag on screen: the flag page and the actions every flag offers.

The actions (``_flag_actions.html``, included wherever a flag is shown: this page, the
agency inbox, the incident page) post here; every change is ``PATCH /v1/flags/{id}`` with
``If-Match`` = the ETag the page was rendered with, so two workers cannot overwrite each
other. The loser of a race gets a page that says so, shows what changed since they looked
(the values then, worked out from the flag's history, against the values now, and the
history entries since) and offers to apply their change to the current version.

Each form carries an ``Idempotency-Key`` made when it was rendered: a double submit is
answered by the API with the first result, never applied twice.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.auth.policy import MATRIX
from app.flags.lifecycle import TRANSITIONS
from app.ui.api import ApiReply, ScreenApi
from app.ui.names import agency_name
from app.ui.web import (
    CurrentUser,
    Form,
    ScreenError,
    api,
    form_key,
    redirect,
    render,
    require_purpose,
    safe_next,
    templates,
)

router = APIRouter(prefix="/ui", include_in_schema=False)

STATUS_LABELS = {
    "acknowledged": "Acknowledge",
    "in_progress": "Mark in progress",
    "done": "Mark done",
    "not_required": "Mark not required",
}
# The fields a conflict page compares, in the order it lists them.
COMPARED = (
    ("status", "Status"),
    ("status_reason", "Reason"),
    ("assignee", "Assigned to"),
    ("needs_review", "Needs review"),
)
NOT_FOUND = "No flag with this id is visible to you."


# What the actions include needs, wherever it is rendered.
templates.env.globals["flag_transitions"] = TRANSITIONS
templates.env.globals["flag_workers"] = MATRIX["flag.work"]
templates.env.globals["status_labels"] = STATUS_LABELS
templates.env.filters["agency_name"] = agency_name


def _flag_id(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError:
        raise ScreenError(404, "Flag not found", NOT_FOUND) from None


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str) or not value or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def person_of(record: dict[str, Any] | None, ref: str) -> dict[str, Any] | None:
    """The person ``ref`` in an incident as the API gave it to this principal (``None``
    when the view does not hold them, or the incident is erased)."""
    incident = (record or {}).get("incident") or {}
    for person in incident.get("persons", []):
        if isinstance(person, dict) and person.get("ref") == ref:
            return person
    return None


async def read_flag(screen: ScreenApi, flag_id: str) -> tuple[dict[str, Any], list[Any]]:
    """The flag (with its ETag) and its history; a 404 page when it is not visible."""
    reply = await screen.get(f"/v1/flags/{flag_id}")
    if not reply.ok:
        raise ScreenError.of(reply)
    history = await screen.get(f"/v1/flags/{flag_id}/history")
    if not history.ok:
        raise ScreenError.of(history)
    flag: dict[str, Any] = reply.json()
    return flag, list(history.json()["events"])


async def _flag_page(
    request: Request,
    user: CurrentUser,
    flag_id: str,
    *,
    error: dict[str, str] | None = None,
    values: dict[str, str] | None = None,
    status_code: int = 200,
) -> Response:
    screen = api(request, user)
    flag, history = await read_flag(screen, flag_id)
    incident = await screen.get(f"/v1/incidents/{flag['incident_id']}")
    subject = person_of(incident.json() if incident.ok else None, flag["subject_ref"])
    return render(
        request,
        "flag.html",
        {
            "flag": flag,
            "history": history,
            "subject": subject,
            "return_to": f"/ui/flags/{flag_id}",
            "flag_error": error,
            "flag_values": values or {},
        },
        status_code=status_code,
    )


@router.get("/flags/{flag_id}")
async def flag_page(request: Request, user: CurrentUser, flag_id: str) -> Response:
    require_purpose(user, request)
    return await _flag_page(request, user, _flag_id(flag_id))


# --------------------------------------------------------------------------- changes


def _back(form: dict[str, str], flag_id: str) -> Response:
    return redirect(f"{safe_next(form.get('return_to'))}#flag-actions-{flag_id}")


async def _patch(
    request: Request,
    user: CurrentUser,
    form: dict[str, str],
    flag_id: str,
    change: dict[str, Any],
    *,
    field: str,
    kind: str,
) -> Response:
    reply = await api(request, user).call(
        "PATCH",
        f"/v1/flags/{flag_id}",
        body=change,
        headers=_write_headers(form, if_match=True),
    )
    if reply.ok:
        return _back(form, flag_id)
    if reply.status == 412:
        return await _conflict(request, user, form, flag_id, change, kind=kind)
    return await _refused(request, user, form, flag_id, reply, field=field, kind=kind)


def _write_headers(form: dict[str, str], *, if_match: bool) -> dict[str, str]:
    headers = form_key(form.get("idempotency_key"))
    if if_match:
        headers["If-Match"] = form.get("etag", "")
    return headers


async def _refused(
    request: Request,
    user: CurrentUser,
    form: dict[str, str],
    flag_id: str,
    reply: ApiReply,
    *,
    field: str,
    kind: str,
) -> Response:
    """The flag page again with the API's reason (its title and detail never echo input)."""
    if reply.status in (401, 403, 404):
        raise ScreenError.of(reply)
    problem = reply.problem
    text = str(problem.get("detail") or problem.get("title") or "The change was refused.")
    if reply.status == 422 and _key_reused(problem):
        text = "This form was already sent with other values. Reload the page and try again."
    elif reply.status == 422:
        text = "Check what you entered: " + _limits(kind)
    values = {k: form.get(k, "") for k in ("status_reason", "assignee", "text")}
    return await _flag_page(
        request,
        user,
        flag_id,
        error={"field": f"flag-{flag_id}-{field}", "form": kind, "text": text},
        values=values,
        status_code=409 if reply.status == 409 else 400,
    )


def _key_reused(problem: dict[str, Any]) -> bool:
    """The API refused a form's Idempotency-Key sent again with other values (a page
    brought back from the browser's history and changed)."""
    errors = problem.get("errors")
    return isinstance(errors, list) and any(
        isinstance(e, dict) and "Idempotency-Key" in (e.get("loc") or []) for e in errors
    )


def _limits(kind: str) -> str:
    return {
        "not_required": "a reason is required, at most 1000 characters.",
        "assign": "a name or team of at most 200 characters.",
        "note": "a note is required, at most 4000 characters.",
    }.get(kind, "the change is not valid.")


@router.post("/flags/{flag_id}/status")
async def change_status(request: Request, user: CurrentUser, form: Form, flag_id: str) -> Response:
    flag_id = _flag_id(flag_id)
    status = form.get("status", "")
    if status not in STATUS_LABELS:
        raise ScreenError(400, "Choose what to do with the flag")
    change: dict[str, Any] = {"status": status}
    kind = "not_required" if status == "not_required" else "status"
    field = "reason" if kind == "not_required" else status
    if status == "not_required":
        reason = form.get("status_reason", "").strip()
        if not reason:
            return await _flag_page(
                request,
                user,
                flag_id,
                error={
                    "field": f"flag-{flag_id}-reason",
                    "form": kind,
                    "text": "Say why the flag is not required.",
                },
                status_code=400,
            )
        change["status_reason"] = reason
    return await _patch(request, user, form, flag_id, change, field=field, kind=kind)


@router.post("/flags/{flag_id}/assign")
async def assign(request: Request, user: CurrentUser, form: Form, flag_id: str) -> Response:
    flag_id = _flag_id(flag_id)
    if form.get("action") == "unassign":
        change: dict[str, Any] = {"assignee": None}
    else:
        assignee = form.get("assignee", "").strip()
        if not assignee:
            return await _flag_page(
                request,
                user,
                flag_id,
                error={
                    "field": f"flag-{flag_id}-assignee",
                    "form": "assign",
                    "text": "Enter who is working the flag (a person or team).",
                },
                status_code=400,
            )
        change = {"assignee": assignee}
    return await _patch(request, user, form, flag_id, change, field="assignee", kind="assign")


@router.post("/flags/{flag_id}/notes")
async def add_note(request: Request, user: CurrentUser, form: Form, flag_id: str) -> Response:
    flag_id = _flag_id(flag_id)
    text = form.get("text", "").strip()
    if not text:
        return await _flag_page(
            request,
            user,
            flag_id,
            error={"field": f"flag-{flag_id}-note", "form": "note", "text": "Write the note."},
            status_code=400,
        )
    reply = await api(request, user).call(
        "POST",
        f"/v1/flags/{flag_id}/notes",
        body={"text": text},
        headers=_write_headers(form, if_match=False),
    )
    if reply.ok:
        return _back(form, flag_id)
    return await _refused(request, user, form, flag_id, reply, field="note", kind="note")


# --------------------------------------------------------------------------- conflicts


def state_at(events: list[dict[str, Any]], moment: datetime) -> dict[str, Any]:
    """The flag's status, reason, assignee and review mark as they stood at ``moment``,
    replayed from its history (oldest first)."""
    state: dict[str, Any] = {
        "status": "open",
        "status_reason": None,
        "assignee": None,
        "needs_review": False,
    }
    for event in events:
        at = _moment(event.get("at"))
        if at is None or at > moment:
            break
        change = event.get("change")
        if change in ("created", "status"):
            state["status"] = event.get("to") or state["status"]
            state["status_reason"] = event.get("note") if change == "status" else None
        elif change == "status_reason":
            state["status_reason"] = event.get("note")
        elif change == "assignee":
            state["assignee"] = event.get("to")
        elif change == "review_marked":
            state["needs_review"] = True
        elif change == "review_cleared":
            state["needs_review"] = False
    return state


async def _conflict(
    request: Request,
    user: CurrentUser,
    form: dict[str, str],
    flag_id: str,
    change: dict[str, Any],
    *,
    kind: str,
) -> Response:
    """Someone else changed the flag first: nothing was written. Show what changed."""
    flag, history = await read_flag(api(request, user), flag_id)
    seen = _moment(form.get("seen_at"))
    then = state_at(history, seen) if seen is not None else None
    since = [e for e in history if seen is None or (_moment(e.get("at")) or seen) > seen]
    rows = [
        {
            "field": name,
            "label": label,
            "then": then[name] if then is not None else None,
            "now": flag.get(name),
            "changed": then is not None and then[name] != flag.get(name),
        }
        for name, label in COMPARED
    ]
    wanted = change.get("status")
    still_possible = (
        wanted is None and flag["status"] in TRANSITIONS and bool(TRANSITIONS[flag["status"]])
    ) or (wanted is not None and wanted in TRANSITIONS.get(flag["status"], ()))
    return render(
        request,
        "flag_conflict.html",
        {
            "flag": flag,
            "rows": rows,
            "known_then": then is not None,
            "since": since,
            "change": change,
            "kind": kind,
            "still_possible": still_possible,
            "return_to": safe_next(form.get("return_to")),
        },
        status_code=409,
    )
