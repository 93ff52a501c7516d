"""Response shapes of incident routes (kept apart from the input schema, which the scoring
and flag engines import)."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from app.assessments.schemas import AssessmentOut
from app.flags.schemas import FlagOut


class IntakeResponse(BaseModel):
    """Body of the 201 (and of an identical replay's 200). Names per the contract."""

    incident_id: str
    version: int = Field(description="Revision of the incident this result belongs to.")
    received_at: AwareDatetime
    assessment: AssessmentOut
    flags: list[FlagOut] = Field(description="The incident's flags after this assessment.")


class StoredPerson(BaseModel):
    ref: str
    role: str
    person_id: str


class IncidentRecord(BaseModel):
    """The stored incident as returned to callers entitled to see it whole."""

    id: str
    version: int
    received_at: AwareDatetime
    updated_at: AwareDatetime
    review_due_at: AwareDatetime | None = None
    erased: bool = False
    persons: list[StoredPerson] = []
    incident: dict[str, Any] | None = Field(
        default=None,
        description="The incident as last submitted (absent after erasure); for an agency, "
        "only the parts that agency needs.",
    )
    flags: list[FlagOut] = Field(
        default=[],
        description="The incident's flags: for an agency, only its own (with due times).",
    )
