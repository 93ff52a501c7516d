"""The person chronology screen: ``GET /v1/persons/{id}`` and its timeline, as a page.

Every incident the person is in, with the levels, MARAC referral and flags the API gives,
linking to each incident in scope; an incident outside the principal's areas shows only
what the API shows of it (date, area, role). A person outside scope is the API's 404.
"""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request
from fastapi.responses import Response

from app.ui import terms
from app.ui.web import CurrentUser, ScreenError, api, render, require_purpose

router = APIRouter(prefix="/ui", include_in_schema=False)
terms.install()

TIMELINE_LIMIT = 200


@router.get("/persons/{person_id}")
async def person_page(request: Request, user: CurrentUser, person_id: str) -> Response:
    require_purpose(user, request)
    try:
        person_id = str(uuid.UUID(person_id))
    except ValueError:
        raise ScreenError(404, "Not found", "There is no such person.") from None
    client = api(request, user)
    reply = await client.get(f"/v1/persons/{person_id}")
    if not reply.ok:
        raise ScreenError.of(reply)
    timeline = await client.get(f"/v1/persons/{person_id}/timeline", {"limit": TIMELINE_LIMIT})
    if not timeline.ok:
        raise ScreenError.of(timeline)
    chronology = timeline.json()
    # The API lists the newest first; a chronology reads oldest first.
    entries = sorted(chronology.get("entries", []), key=lambda e: e.get("occurred_at") or "")
    return render(
        request,
        "person.html",
        {
            "person_id": person_id,
            "person": reply.json(),
            "entries": entries,
            "distinct_victims": chronology.get("distinct_victims", []),
            "truncated": chronology.get("truncated", False),
        },
    )
