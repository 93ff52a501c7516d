"""The MASH triage queue screen: ``GET /v1/queue`` as a table, refreshed in place."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.flags.vocabulary import AGENCIES, FLAG_TYPES
from app.ui.names import agency_name
from app.ui.web import CurrentUser, ScreenError, api, render, require_purpose

router = APIRouter(prefix="/ui", include_in_schema=False)

# Seconds between refreshes of the table (htmx; with JavaScript off, reload the page).
REFRESH_SECONDS = 30


@router.get("/queue")
async def queue(
    request: Request,
    user: CurrentUser,
    area: Annotated[str | None, Query(max_length=64)] = None,
    agency: Annotated[str | None, Query(max_length=32)] = None,
    flag_type: Annotated[str | None, Query(alias="type", max_length=64)] = None,
    overdue: Annotated[str | None, Query(max_length=16)] = None,
    notice: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
    partial: bool = False,
) -> Response:
    require_purpose(user, request)
    # Only values the API knows: anything else is no filter (and is never echoed back).
    agency = agency if agency in AGENCIES else None
    flag_type = flag_type if flag_type in FLAG_TYPES else None
    only_overdue = overdue == "true"
    only_problems = notice == "problem"
    params: dict[str, str | None] = {
        "area": area or None,
        "agency": agency,
        "type": flag_type,
        "overdue": "true" if only_overdue else None,
        "notification_problem": "true" if only_problems else None,
        "cursor": cursor,
        "limit": "50",
    }
    reply = await api(request, user).get("/v1/queue", params)
    if not reply.ok:
        raise ScreenError.of(reply)
    page = reply.json()
    rows = page["items"]
    context = {
        "rows": rows,
        "as_of": page["as_of"],
        "next_cursor": page["next_cursor"],
        "area": area or "",
        "agency": agency or "",
        "agency_label": agency_name(agency) if agency else "",
        "flag_type": flag_type or "",
        "only_overdue": only_overdue,
        "only_problems": only_problems,
        "agencies": [(a, agency_name(a)) for a in AGENCIES],
        "flag_types": FLAG_TYPES,
        "filtered": bool(agency or flag_type or only_overdue or only_problems),
        "areas": sorted(a for a in user.principal.areas if a != "*"),
        "refresh": REFRESH_SECONDS,
        "open_total": sum(r["open_flags"] for r in rows),
        "overdue_total": sum(r["overdue_flags"] for r in rows),
        "problems_total": sum(r["notification_problems"] for r in rows),
    }
    template = "queue_table.html" if partial else "queue.html"
    return render(request, template, context)
