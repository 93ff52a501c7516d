"""The agency inbox: the flags addressed to the signed-in agency (or school), to work.

``GET /v1/flags`` already limits an agency to its own flags in its areas, and a school to
the flags about its own pupils; the inbox shows that listing in the API's order (priority,
then due time: the most urgent first), with the person each flag is about as the
agency's minimised view of the incident (``GET /v1/incidents/{id}``) gives them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from app.ui.flags import person_of
from app.ui.web import CurrentUser, ScreenError, api, render, require_purpose

router = APIRouter(prefix="/ui", include_in_schema=False)

PAGE_SIZE = 25
# The status choices of the inbox's filter: label, and the API's `status` values.
SHOW: dict[str, tuple[str, tuple[str, ...]]] = {
    "open": ("All open flags", ()),
    "new": ("Not yet acknowledged", ("open",)),
    "acknowledged": ("Acknowledged", ("acknowledged",)),
    "in_progress": ("In progress", ("in_progress",)),
    "closed": ("Closed (done or not required)", ("done", "not_required")),
}
SOON = timedelta(hours=24)


def _due_soon(flag: dict[str, Any], now: datetime) -> bool:
    try:
        due = datetime.fromisoformat(str(flag["due_at"]).replace("Z", "+00:00"))
    except ValueError:
        return False
    return (
        not flag["overdue"]
        and flag["status"] in ("open", "acknowledged", "in_progress")
        and (due < now + SOON)
    )


@router.get("/inbox")
async def inbox(
    request: Request,
    user: CurrentUser,
    show: Annotated[str, Query(max_length=20)] = "open",
    overdue: Annotated[str | None, Query(max_length=16)] = None,
    cursor: Annotated[str | None, Query(max_length=500)] = None,
) -> Response:
    require_purpose(user, request)
    if show not in SHOW:
        show = "open"
    only_overdue = overdue == "true"
    params: dict[str, Any] = {
        "status": list(SHOW[show][1]) or None,
        "overdue": "true" if only_overdue else None,
        "cursor": cursor,
        "limit": str(PAGE_SIZE),
    }
    screen = api(request, user)
    reply = await screen.get("/v1/flags", params)
    if not reply.ok:
        raise ScreenError.of(reply)
    page = reply.json()
    flags: list[dict[str, Any]] = page["items"]
    # The person each flag is about, from the incident as this agency may see it (each
    # read is the API's own consult, and for an agency a disclosure to it).
    subjects: dict[str, dict[str, Any] | None] = {}
    for incident_id in dict.fromkeys(f["incident_id"] for f in flags):
        record = await screen.get(f"/v1/incidents/{incident_id}")
        body = record.json() if record.ok else None
        for flag in flags:
            if flag["incident_id"] == incident_id:
                subjects[flag["id"]] = person_of(body, flag["subject_ref"])
    now = datetime.now(UTC)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return render(
        request,
        "inbox.html",
        {
            "flags": flags,
            "subjects": subjects,
            "as_of": page["as_of"],
            "next_cursor": page["next_cursor"],
            "show": show,
            "shows": {k: v[0] for k, v in SHOW.items()},
            "only_overdue": only_overdue,
            "overdue_count": sum(1 for f in flags if f["overdue"]),
            "soon_count": sum(1 for f in flags if _due_soon(f, now)),
            "return_to": here,
        },
    )
