"""The auditor's screens: an assessment's explanation, reproduction, the audit log, the chain.

Every page is made from the ``/v1`` answers (``app/ui/api.py``): the explanation and the
reproduction of ``/v1/assessments/{id}``, an incident's versions, ``/v1/audit/events`` with
its filters and ``/v1/audit/verify``. Each of those API reads is itself a ``consult`` event
in the log, with the purpose chosen on screen.
"""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.ui.web import (
    LONDON,
    CurrentUser,
    Form,
    ScreenError,
    api,
    render,
    require_purpose,
)

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 50
OPERATIONS = ("collect", "alter", "consult", "disclose", "combine", "erase")
ANCHOR = re.compile(r"^[0-9]{1,18}:[0-9a-f]{64}$")
NOT_FOUND = "No such record is visible to you."


def _uuid_or_404(value: str) -> str:
    try:
        return str(uuid.UUID(value))
    except ValueError as exc:
        raise ScreenError(404, "Page not found", NOT_FOUND) from exc


def _pretty(value: Any) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


# --------------------------------------------------------------------------- assessments


def _names_by_ref(inputs: dict[str, Any]) -> dict[str, str]:
    """Each person's ref in the incident as scored → a name to show beside the ref."""
    names: dict[str, str] = {}
    for person in (inputs.get("incident") or {}).get("persons") or []:
        name = person.get("name") or {}
        shown = " ".join(p for p in (name.get("given"), name.get("family")) if p)
        if person.get("ref") and shown:
            names[str(person["ref"])] = shown
    return names


def _definition_parts(definitions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The thresholds and settings of each definition used, by kind, for reading."""
    keep = {
        "victim_checklist": (
            "thresholds",
            "red_flag",
            "victim_perception",
            "incomplete_assessment",
            "marac",
        ),
        "child_risk": (
            "start_level",
            "levels",
            "vulnerability_step",
            "recommended_responses",
            "responses_by_plan",
        ),
    }
    parts: dict[str, dict[str, Any]] = {}
    for d in definitions:
        body = d.get("definition") or {}
        wanted = keep.get(str(d.get("kind")), ())
        parts[str(d.get("kind"))] = {k: body[k] for k in wanted if k in body}
    return parts


async def _assessment_context(
    request: Request, user: CurrentUser, assessment_id: str
) -> dict[str, Any]:
    reply = await api(request, user).get(f"/v1/assessments/{assessment_id}/explanation")
    if not reply.ok:
        raise ScreenError.of(reply)
    explanation: dict[str, Any] = reply.json()
    inputs = explanation.get("inputs") or {}
    definitions = explanation.get("definitions") or []
    return {
        "assessment": explanation["assessment"],
        "explanation": explanation,
        "incident_id": explanation.get("incident_id"),
        "names": _names_by_ref(inputs),
        "definitions": definitions,
        "definition_parts": _definition_parts(definitions),
        "definition_json": {str(d["sha256"]): _pretty(d["definition"]) for d in definitions},
        "inputs_json": _pretty(inputs) if inputs else None,
        "classifier": explanation.get("classifier"),
        "reproduction": None,
    }


@router.get("/assessments/{assessment_id}")
async def assessment_page(request: Request, user: CurrentUser, assessment_id: str) -> Response:
    require_purpose(user, request)
    context = await _assessment_context(request, user, _uuid_or_404(assessment_id))
    return render(request, "assessment.html", context)


@router.post("/assessments/{assessment_id}/reproduce")
async def reproduce(
    request: Request,
    user: CurrentUser,
    _form: Form,
    assessment_id: str,
    partial: bool = False,
) -> Response:
    """Re-run the stored inputs through the stored definitions and show the outcome.

    Reproduction changes nothing (the API answers it like a read and logs a ``consult``),
    so the answer is the page itself rather than a redirect: sending it again only
    reproduces again.
    """
    require_purpose(user, request)
    assessment_id = _uuid_or_404(assessment_id)
    reply = await api(request, user).post(f"/v1/assessments/{assessment_id}/reproduce", None)
    if not reply.ok:
        raise ScreenError.of(reply)
    reproduction = reply.json()
    if partial:
        return render(request, "assessment_reproduction.html", {"reproduction": reproduction})
    context = await _assessment_context(request, user, assessment_id)
    context["reproduction"] = reproduction
    return render(request, "assessment.html", context)


@router.get("/incidents/{incident_id}/assessments")
async def incident_assessments(request: Request, user: CurrentUser, incident_id: str) -> Response:
    require_purpose(user, request)
    incident_id = _uuid_or_404(incident_id)
    reply = await api(request, user).get(f"/v1/incidents/{incident_id}/assessments")
    if not reply.ok:
        raise ScreenError.of(reply)
    listing = reply.json()
    return render(
        request,
        "incident_assessments.html",
        {"incident_id": listing["incident_id"], "assessments": listing["assessments"]},
    )


# --------------------------------------------------------------------------- audit log


def _local_to_iso(value: str) -> str:
    """A ``datetime-local`` field (London time) → an ISO instant for the API."""
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.isoformat()


@router.get("/audit")
async def audit_events(
    request: Request,
    user: CurrentUser,
    record: Annotated[str | None, Query(max_length=64)] = None,
    person: Annotated[str | None, Query(max_length=64)] = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    operation: Annotated[str | None, Query(max_length=20)] = None,
    from_: Annotated[str | None, Query(alias="from", max_length=40)] = None,
    to: Annotated[str | None, Query(max_length=40)] = None,
    after: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    require_purpose(user, request)
    chosen = {
        "record": (record or "").strip(),
        "person": (person or "").strip(),
        "actor": (actor or "").strip(),
        "operation": operation or "",
        "from": from_ or "",
        "to": to or "",
    }
    errors: list[tuple[str, str]] = []
    if chosen["operation"] and chosen["operation"] not in OPERATIONS:
        errors.append(("operation", "Choose an operation from the list."))
    params: dict[str, str | int | None] = {
        "record": chosen["record"] or None,
        "person": chosen["person"] or None,
        "actor": chosen["actor"] or None,
        "operation": chosen["operation"] or None,
        "after": after,
        "limit": PAGE_SIZE,
    }
    for field, label in (("from", "From"), ("to", "To")):
        if chosen[field]:
            try:
                params[field] = _local_to_iso(chosen[field])
            except ValueError:
                errors.append((field, f"{label} must be a date and time, like 27/11/2026 09:30."))
    page: dict[str, Any] = {"events": [], "next_cursor": None}
    status = 200
    if errors:
        status = 400
    else:
        reply = await api(request, user).get("/v1/audit/events", params)
        if reply.status in (400, 422):
            problem = reply.problem
            errors.append(("record", str(problem.get("detail") or problem.get("title"))))
            status = 400
        elif not reply.ok:
            raise ScreenError.of(reply)
        else:
            page = reply.json()
    filters = {k: v for k, v in chosen.items() if v}
    next_link = None
    if page.get("next_cursor") is not None:
        next_link = "/ui/audit?" + urlencode({**filters, "after": page["next_cursor"]})
    return render(
        request,
        "audit.html",
        {
            "events": page["events"],
            "next_link": next_link,
            "first_link": "/ui/audit?" + urlencode(filters) if after else None,
            "chosen": chosen,
            "filtered": bool(filters),
            "operations": OPERATIONS,
            "errors": errors,
        },
        status_code=status,
    )


@router.get("/audit/verify")
async def verify_chain(
    request: Request,
    user: CurrentUser,
    anchor: Annotated[str | None, Query(max_length=100)] = None,
) -> Response:
    anchor = (anchor or "").strip()
    errors: list[tuple[str, str]] = []
    if anchor and not ANCHOR.match(anchor):
        errors.append(
            ("anchor", "An anchor is a sequence number, a colon and a 64-character hash.")
        )
        return render(
            request,
            "audit_verify.html",
            {"result": None, "anchor": anchor, "errors": errors},
            status_code=400,
        )
    reply = await api(request, user).get("/v1/audit/verify", {"anchor": anchor or None})
    if not reply.ok:
        raise ScreenError.of(reply)
    return render(
        request,
        "audit_verify.html",
        {"result": reply.json(), "anchor": anchor, "errors": errors},
    )
