"""The search screen: incidents and persons by source reference, PNC id, or name and date
of birth, with the purpose of this search (``GET /v1/incidents``, ``GET /v1/persons``).

The API searches with GET, so the screen does too: the criteria are in the page's address
(never in a log line: the access log records the route, not the query string; the pages
are sent with ``Referrer-Policy: no-referrer``). Results are only what the API finds in the
principal's scope, and each search is a ``consult`` in the audit log with the purpose
chosen here, which is passed as ``X-Purpose`` for this search only.
"""

from __future__ import annotations

import re
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.contract.purposes import valid_purpose
from app.ui.api import ApiReply
from app.ui.web import CurrentUser, ScreenError, api, render, require_purpose

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 20

# The API's pattern of a source system or reference (the contract's), checked here first
# so that the message can say what a reference may hold.
CODE = re.compile(r"^[A-Za-z0-9._:/-]{1,64}$")
ONE_WAY = "Search one way at a time: a source reference, a PNC id, or a name and date of birth."


FIELDS = ("source_reference", "source_system", "pnc", "name", "date_of_birth")


def _problem(reply: ApiReply, field: str) -> tuple[str, str]:
    """The refusal as (field, message): the API's detail names what is wrong, never the
    value, and its first issue's location says which field."""
    problem = reply.problem
    for issue in problem.get("errors") or []:
        loc = issue.get("loc") or []
        if loc and loc[-1] in FIELDS:
            field = str(loc[-1])
            break
    message = problem.get("detail") or problem.get("title") or "The search was refused."
    return field, str(message)


@router.get("/search")
async def search(
    request: Request,
    user: CurrentUser,
    source_reference: Annotated[str | None, Query(max_length=64)] = None,
    source_system: Annotated[str | None, Query(max_length=64)] = None,
    pnc: Annotated[str | None, Query(max_length=64)] = None,
    name: Annotated[str | None, Query(max_length=401)] = None,
    date_of_birth: Annotated[str | None, Query(max_length=10)] = None,
    purpose: Annotated[str | None, Query(max_length=64)] = None,
    case_reference: Annotated[str | None, Query(max_length=40)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    require_purpose(user, request)
    session_code, _, session_case = (user.purpose or "").partition(":")
    form = {
        "source_reference": (source_reference or "").strip(),
        "source_system": (source_system or "").strip(),
        "pnc": (pnc or "").strip(),
        "name": " ".join((name or "").split()),
        "date_of_birth": (date_of_birth or "").strip(),
        "purpose": purpose if purpose is not None else session_code,
        "case_reference": ((case_reference or "").strip() if purpose is not None else session_case),
    }
    kinds = [
        kind
        for kind, given in (
            ("reference", form["source_reference"] or form["source_system"]),
            ("pnc", form["pnc"]),
            ("name", form["name"] or form["date_of_birth"]),
        )
        if given
    ]
    context: dict[str, Any] = {
        "form": form,
        "searched": False,
        "incidents": [],
        "persons": [],
        "persons_truncated": False,
        "next_link": None,
        "errors": [],
    }
    if not kinds:
        return render(request, "search.html", context)

    errors: list[tuple[str, str]] = []
    chosen_purpose = (
        f"{form['purpose']}:{form['case_reference']}" if form["case_reference"] else form["purpose"]
    )
    if not valid_purpose(chosen_purpose):
        errors.append(
            (
                "purpose",
                "Choose a purpose. A case reference may hold letters, digits and / . _ - with "
                "at least one digit (a reference, never a name).",
            )
        )
    if len(kinds) > 1:
        errors.append(("source_reference", ONE_WAY))
    elif kinds == ["reference"] and not form["source_reference"]:
        errors.append(("source_reference", "Enter the source reference."))
    elif kinds == ["reference"] and not CODE.match(form["source_reference"]):
        errors.append(
            ("source_reference", "A source reference holds letters, digits and . _ : / - only.")
        )
    elif kinds == ["reference"] and form["source_system"] and not CODE.match(form["source_system"]):
        errors.append(
            ("source_system", "A source system holds letters, digits and . _ : / - only.")
        )
    elif kinds == ["name"] and not form["name"]:
        errors.append(("name", "Enter the full name, given name then family name."))
    elif kinds == ["name"] and not form["date_of_birth"]:
        errors.append(("date_of_birth", "Enter the date of birth with the name."))
    if errors:
        context["errors"] = errors
        return render(request, "search.html", context, status_code=400)

    kind = kinds[0]
    criteria: dict[str, str | None]
    if kind == "reference":
        criteria = {
            "source_reference": form["source_reference"],
            "source_system": form["source_system"] or None,
        }
    elif kind == "pnc":
        criteria = {"pnc": form["pnc"]}
    else:
        criteria = {"name": form["name"], "date_of_birth": form["date_of_birth"]}
    field = {"reference": "source_reference", "pnc": "pnc", "name": "name"}[kind]
    screen_api = api(request, user)
    incidents = await screen_api.get(
        "/v1/incidents",
        {**criteria, "limit": PAGE_SIZE, "cursor": cursor},
        purpose=chosen_purpose,
    )
    if incidents.status in (400, 422):
        context["errors"] = [_problem(incidents, field)]
        return render(request, "search.html", context, status_code=400)
    if not incidents.ok:
        raise ScreenError.of(incidents)
    page = incidents.json()
    context.update(searched=True, incidents=page["items"], kind=kind)
    if page.get("next_cursor"):
        kept = {k: v for k, v in form.items() if v}
        context["next_link"] = "/ui/search?" + urlencode({**kept, "cursor": page["next_cursor"]})
    if kind != "reference" and not cursor:
        persons = await screen_api.get("/v1/persons", criteria, purpose=chosen_purpose)
        if not persons.ok:
            raise ScreenError.of(persons)
        found = persons.json()
        context.update(persons=found["items"], persons_truncated=found["truncated"])
    return render(request, "search.html", context)
