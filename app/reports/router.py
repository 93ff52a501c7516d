"""HTTP route of the area reports (``/v1/reports/areas/{area}``).

Aggregates only: small numbers suppressed (``app.reports.suppression``), no person-level
row. An auditor reads every area; a partnership only its own (another area is a 404, as
if it had no report). Every read is an audit ``consult`` of record type ``report`` whose
detail names the area, the period and the format, never a figure.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from app.audit.record import record
from app.auth.deps import CAPTURE_PURPOSE
from app.auth.policy import authorize, report_in_scope
from app.auth.principal import Principal
from app.contract.bounds import BoundedDate
from app.db import DatabaseDep, utcnow
from app.errors import COMMON_PROBLEMS, NotFound, Unprocessable, problem_responses
from app.reports.area import MAX_SPAN_DAYS, area_report, report_csv
from app.requests import StrictJsonRoute
from app.responses import json_response

router = APIRouter(prefix="/v1", tags=["reports"], route_class=StrictJsonRoute)

AREA_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
NOT_VISIBLE = "No report for this area is available to you."
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"

Count = int | str  # a count, or "<5"
Rate = float | str | None  # a rate or median; "<5" when withheld, null without a base


class ReportRow(BaseModel):
    model_config = ConfigDict(extra="forbid")
    row: str
    values: dict[str, Count]
    rates: dict[str, Rate] | None = None


class ReportTotal(BaseModel):
    model_config = ConfigDict(extra="forbid")
    values: dict[str, Count]
    rates: dict[str, Rate] | None = None


class ReportTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str
    title: str
    rows_are: Literal["month", "agency"]
    columns: list[str]
    total_column: str | None
    rows: list[ReportRow]
    total: ReportTotal | None


class AreaReportOut(BaseModel):
    """An area's statistics for a period; every figure is defined in docs/reports.md."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    area: str
    from_: dt.date = Field(alias="from")
    to: dt.date
    as_of: dt.datetime
    suppression: dict[str, Any]
    summary: dict[str, Any]
    tables: list[ReportTable]


@router.get(
    "/reports/areas/{area}",
    response_model=AreaReportOut,
    response_model_by_alias=True,
    operation_id="get_area_report",
    summary="An area's statistics for a period, month by month, small numbers suppressed",
    description="Incidents by victim level, children by level and what they went through, "
    "repeat victims and perpetrators (12 months), serial perpetrators, separation, MARAC "
    "referrals and the repeat-MARAC rate (SafeLives' benchmark 28-40 %), flags by agency "
    "and what became of them, the median time to a flag's first action, and retention "
    "reviews. `from` is inclusive, `to` exclusive (local dates, Europe/London), at most "
    "five years apart. Every count below 5 is shown as `<5`, and further counts are "
    "hidden so that none can be worked out from the totals; rates and medians made from "
    "a hidden count are `<5` too. `format=csv`: the same figures, one per line "
    "(`table,row,measure,value`). Definitions: docs/reports.md.",
    responses={
        200: {"content": {"text/csv": {"schema": {"type": "string"}}}},
        **problem_responses(*COMMON_PROBLEMS),
    },
    dependencies=[CAPTURE_PURPOSE],
)
def get_area_report(
    request: Request,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("report.read"))],
    area: Annotated[str, Path(pattern=AREA_PATTERN, description="Area code.")],
    start: Annotated[BoundedDate, Query(alias="from", description="First day (inclusive).")],
    end: Annotated[BoundedDate, Query(alias="to", description="Day after the last (exclusive).")],
    format: Annotated[
        Literal["json", "csv"], Query(description="`json` (default) or `csv`.")
    ] = "json",
) -> Response:
    if not report_in_scope(principal, area):
        raise NotFound(NOT_VISIBLE)
    if end <= start:
        raise Unprocessable(
            "`to` must be after `from`.", errors=[{"loc": ["query", "to"], "msg": "not after from"}]
        )
    if (end - start).days > MAX_SPAN_DAYS:
        raise Unprocessable(
            "A report spans at most five years.",
            errors=[{"loc": ["query", "to"], "msg": "more than five years after from"}],
        )
    with db.unit() as session:
        report = area_report(session, area, start, end, utcnow())
        body = report.json()
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="report",
            record_ids=[f"area:{area}"],
            payload=body,
            detail={
                "area": area,
                "from": start.isoformat(),
                "to": end.isoformat(),
                "format": format,
            },
            principal=principal,
        )
    if format == "csv":
        return Response(report_csv(report), media_type=CSV_MEDIA_TYPE)
    return json_response(body)
