"""``POST /v1/reports/what-if``: what a draft checklist or flag-rules version would change.

Runs in the request (the service's worker thread, one process) for an area of at most
:data:`API_LIMIT` incidents in scope; a larger scope is refused with a problem that names
the command line (``triage rescore``), which streams the rows to a process pool. Nothing is
stored but one ``consult`` audit event (area, counts, the draft's sha256: no person data).
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from app.audit.record import record
from app.auth.deps import CAPTURE_PURPOSE
from app.auth.policy import authorize
from app.auth.principal import Principal
from app.contract.bounds import BoundedTime
from app.contract.incident import Code
from app.db import DatabaseDep
from app.errors import COMMON_PROBLEMS, Unprocessable, problem_responses
from app.reports import whatif_repository
from app.reports.whatif import DraftError, ScenarioSpec, audit_detail, parse_draft, report, run
from app.reports.whatif_repository import Scope
from app.requests import StrictJsonRoute
from app.responses import json_response

router = APIRouter(prefix="/v1", tags=["reports"], route_class=StrictJsonRoute)

# Above this many incidents in scope the API refuses and points to `triage rescore`
# (at ~0.2 ms per incident, 20,000 take a few seconds of one request thread).
API_LIMIT = 20_000
BATCH = 1_000

DraftText = Annotated[str, StringConstraints(min_length=1, max_length=256 * 1024)]


class WhatIfIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    area: Code = Field(description="The area whose incidents are re-scored (ONS code).")
    definition: dict[str, Any] | DraftText = Field(
        description=(
            "The draft: a victim checklist, child-risk definition or flag-rules file in the "
            "format of the shipped files (app/scoring/definitions, app/flags/rules), as a JSON "
            "object or as YAML or JSON text. Validated as those files are; a problem names "
            "the location and the rule, never the content."
        )
    )
    occurred_from: BoundedTime | None = Field(
        default=None, alias="from", description="Incidents that occurred at or after this."
    )
    occurred_to: BoundedTime | None = Field(
        default=None, alias="to", description="Incidents that occurred before this."
    )


class TransitionTable(BaseModel):
    before_after: dict[str, dict[str, int | str]] = Field(
        description="Rows: level under the current definitions; columns: under the draft."
    )
    changed: dict[str, int | str] = Field(description="`up`, `down`, `unchanged`.")


class AppearingDisappearing(BaseModel):
    appearing: dict[str, int | str]
    disappearing: dict[str, int | str]


class DraftRef(BaseModel):
    kind: str
    key: str
    sha256: str


class WhatIfOut(BaseModel):
    """Aggregates only; every count below 5 (and any that would give one away) is `"<5"`."""

    area: str
    draft: DraftRef
    compared: str
    incidents: int | str
    failed: int | str = Field(description="Stored inputs the engine could not re-score.")
    victims: TransitionTable
    children: TransitionTable
    marac_criteria: AppearingDisappearing
    flags: AppearingDisappearing
    seconds: float | None = None


@router.post(
    "/reports/what-if",
    response_model=WhatIfOut,
    operation_id="what_if",
    summary="Re-score stored incidents under a draft checklist or rules version (nothing stored)",
    description=(
        "Re-scores the latest assessment of each incident of the area (and period) from its "
        "stored inputs, once with the area's current definitions and once with the draft in "
        "place of the definition of the same id (or of the area's flag rules), and reports "
        "how many victims and children would change level, and which MARAC criteria and "
        "flag types would appear or disappear. Compared on the same inputs, so the answer "
        "shows the draft's effect alone. At most 20,000 incidents in scope: larger areas "
        "with `triage rescore`."
    ),
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[CAPTURE_PURPOSE],
)
def what_if(
    request: Request,
    body: WhatIfIn,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("report.what_if"))],
) -> Response:
    try:
        draft = parse_draft(body.definition)
        spec = ScenarioSpec.for_area(request.app.state.scoring, body.area, draft)
    except DraftError as exc:
        raise Unprocessable(
            "The draft is not a valid definition.",
            errors=[{"loc": ["body", "definition"], "msg": p} for p in exc.problems],
        ) from None
    scope = Scope(body.area, _utc(body.occurred_from), _utc(body.occurred_to))
    started = time.perf_counter()
    with db.unit() as session:
        count = whatif_repository.count_in_scope(session, scope)
        if count > API_LIMIT:
            raise Unprocessable(
                f"{count} incidents are in scope; the API re-scores at most {API_LIMIT}. "
                "Narrow the period, or run `triage rescore` on the server."
            )
        batches = whatif_repository.stream_rows(
            session.connection(), scope, BATCH, spec.stored_keys()
        )
        tally = run(spec, batches, workers=1)
        out = report(tally, draft=draft, area=body.area, seconds=time.perf_counter() - started)
        record(
            request,
            session,
            operation="consult",
            record_type="report",
            record_ids=[],
            detail=audit_detail(tally, draft, body.area),
            principal=principal,
        )
    return json_response(out)


def _utc(value: dt.datetime | None) -> dt.datetime | None:
    return value.astimezone(dt.UTC) if value is not None else None
