"""Response shapes of stored assessments, explanations and reproductions."""

from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, Field

from app.scoring.schemas import AssessmentBody, DefinitionRefOut


class AssessmentOut(AssessmentBody):
    """A stored assessment version (the contract's `assessment`). It is its own explanation."""

    combination_policy: str = Field(
        description="How the checklist and an optional classifier were combined."
    )
    flag_rules: DefinitionRefOut = Field(description="The flag rules version evaluated.")


class AssessmentList(BaseModel):
    incident_id: str
    assessments: list[AssessmentOut] = Field(description="All versions, newest first.")


class DefinitionUsed(BaseModel):
    kind: str
    id: str
    version: str
    sha256: str
    definition: dict[str, Any] = Field(description="The definition exactly as used.")


class SubmissionFact(BaseModel):
    revision: int
    kind: str
    received_at: AwareDatetime
    principal_id: str
    submitted_by: str | None = Field(description="`source.submitted_by` as submitted.")
    body_sha256: str


class JudgementFact(BaseModel):
    level: str
    rationale: str | None
    by: str
    at: AwareDatetime
    source: str
    subject_ref: str | None = Field(
        default=None,
        description="Rules v2: the child judged (its ref in the incident); null for the victim.",
    )


class Explanation(BaseModel):
    """Everything an auditor needs to check a score by hand."""

    incident_id: str = Field(description="The incident this assessment is of.")
    assessment: AssessmentOut
    trigger: str = Field(description="What produced this version: intake, revision, judgement.")
    inputs: dict[str, Any] = Field(
        description="Exactly what the engine received: the incident as scored, the history "
        "(with the source of every figure), and later judgements."
    )
    definitions: list[DefinitionUsed]
    classifier: dict[str, Any] | None = Field(
        description="Model name, version, sha256, probability and contributions, if one was used."
    )
    combination_policy: str
    submissions: list[SubmissionFact] = Field(description="Who submitted what, and when.")
    judgements: list[JudgementFact] = Field(description="Who judged what, and when.")


class Difference(BaseModel):
    path: str = Field(description="JSON Pointer into the assessment.")
    stored: Any
    recomputed: Any


class Reproduction(BaseModel):
    assessment_id: str
    identical: bool
    differences: list[Difference]
