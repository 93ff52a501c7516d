"""Response shapes of incident routes (kept apart from the input schema, which the scoring
and flag engines import)."""

from __future__ import annotations

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
