"""Stored assessments as the API shows them.

Assessments are never changed after they are written; a revision or a judgement adds a
version (written by the intake orchestrator, ``app/intake``).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from app.assessments import models
from app.assessments.schemas import AssessmentOut
from app.contract.levels import CHILD_RANK, VICTIM_RANK
from app.errors import Gone
from app.responses import json_datetime


def risk_rank(result: dict[str, Any]) -> int:
    """Queue ranking: the highest of the victim's level and every child's level."""
    ranks = [VICTIM_RANK[result["victim"]["level"]]]
    ranks += [CHILD_RANK[c["level"]] for c in result["children"]]
    return max(ranks)


def assessment_out(assessment: models.Assessment) -> AssessmentOut:
    if assessment.result is None:
        raise Gone("This assessment's content was erased.")
    return assessment_body(
        assessment.result, assessment.id, assessment.version, assessment.created_at
    )


def assessment_json(
    result: dict[str, Any], assessment_id: uuid.UUID, version: int, created_at: datetime
) -> dict[str, Any]:
    """``assessment_body(...).model_dump(mode="json")``, built directly.

    The engine's result is JSON already, made by this service's own code: validating it
    again on every intake cost more than scoring it. A property test holds the two equal
    for generated incidents, so the contract's model still says what this returns."""
    merged = {
        **result,
        "id": str(assessment_id),
        "version": version,
        "created_at": json_datetime(created_at),
    }
    return {name: merged[name] for name in ASSESSMENT_FIELDS if name in merged}


# The contract's order of the assessment's fields (what the model would dump).
ASSESSMENT_FIELDS = tuple(AssessmentOut.model_fields)


def assessment_body(
    result: dict[str, Any], assessment_id: uuid.UUID, version: int, created_at: datetime
) -> AssessmentOut:
    """The contract's ``assessment`` object: the engine's result with its stored identity."""
    return AssessmentOut.model_validate(
        {**result, "id": str(assessment_id), "version": version, "created_at": created_at}
    )
