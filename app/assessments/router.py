"""Assessments (every version), explanations and reproduction for auditors, checklists."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.assessments import models
from app.assessments.pipeline import COMBINATION_POLICY, ClassifierPolicy, evaluate
from app.assessments.schemas import (
    AssessmentList,
    AssessmentOut,
    DefinitionUsed,
    Difference,
    Explanation,
    JudgementFact,
    Reproduction,
    SubmissionFact,
)
from app.assessments.service import assessment_out
from app.audit.record import record
from app.auth.deps import REQUIRE_PURPOSE
from app.auth.policy import authorize
from app.auth.principal import Principal
from app.classifier.artifact import LoadedModel
from app.contract.incident import stored_incident
from app.db import DatabaseDep
from app.errors import COMMON_PROBLEMS, Gone, NotFound, problem_responses
from app.incidents import models as incident_models
from app.incidents.service import person_ids, visible_incident
from app.requests import StrictJsonRoute
from app.responses import json_response
from app.scoring.history import History
from app.scoring.judgement import Judgement
from app.scoring.registry import DefinitionRegistry, DefinitionSet, definition_from_document
from app.scoring.reproduce import Difference as ScoringDifference
from app.scoring.reproduce import compare

router = APIRouter(prefix="/v1", tags=["assessments"], route_class=StrictJsonRoute)

NOT_VISIBLE = "No assessment with this id is visible to you."


def _visible_assessment(
    session: Session, principal: Principal, assessment_id: uuid.UUID
) -> tuple[models.Assessment, incident_models.Incident]:
    assessment = session.get(models.Assessment, assessment_id)
    if assessment is None:
        raise NotFound(NOT_VISIBLE)
    row = visible_incident(session, principal, assessment.incident_id, NOT_VISIBLE)
    if assessment.result is None:
        raise Gone("This assessment's content was erased with its incident.")
    return assessment, row


@router.get(
    "/assessments/{assessment_id}",
    response_model=AssessmentOut,
    operation_id="get_assessment",
    summary="One assessment version",
    responses=problem_responses(410, *COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def get_assessment(
    request: Request,
    assessment_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("assessment.read"))],
) -> Response:
    with db.unit() as session:
        assessment, row = _visible_assessment(session, principal, assessment_id)
        out = assessment_out(assessment)
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="assessment",
            record_ids=[assessment.id, row.id],
            person_ids=person_ids(session, row.id),
            payload=body,
            principal=principal,
        )
        return json_response(body)


@router.get(
    "/incidents/{incident_id}/assessments",
    response_model=AssessmentList,
    operation_id="list_incident_assessments",
    summary="All assessment versions of an incident, newest first",
    responses=problem_responses(410, *COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def list_assessments(
    request: Request,
    incident_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("assessment.read"))],
) -> Response:
    with db.unit() as session:
        row = visible_incident(session, principal, incident_id)
        if row.erased_at is not None:
            raise Gone("This incident's personal data was erased.")
        versions = session.scalars(
            select(models.Assessment)
            .where(models.Assessment.incident_id == row.id)
            .order_by(models.Assessment.version.desc())
        )
        out = AssessmentList(
            incident_id=str(row.id), assessments=[assessment_out(a) for a in versions]
        )
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="assessment",
            record_ids=[row.id, *(a.id for a in out.assessments)],
            person_ids=person_ids(session, row.id),
            payload=body,
            principal=principal,
        )
        return json_response(body)


def _definitions_used(session: Session, assessment: models.Assessment) -> list[DefinitionUsed]:
    hashes = [
        assessment.victim_checklist_sha256,
        assessment.child_checklist_sha256,
        assessment.flag_rules_sha256,
    ]
    used = []
    for sha in hashes:
        snap = session.get(models.DefinitionSnapshot, sha) if sha else None
        if snap is not None:
            used.append(
                DefinitionUsed(
                    kind=snap.kind,
                    id=snap.definition_id,
                    version=snap.version,
                    sha256=snap.sha256,
                    definition=snap.body,
                )
            )
    return used


@router.get(
    "/assessments/{assessment_id}/explanation",
    response_model=Explanation,
    operation_id="explain_assessment",
    summary="Inputs as scored, definitions with hashes, every rule and point, who did what",
    responses=problem_responses(410, *COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def explain_assessment(
    request: Request,
    assessment_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("assessment.explain"))],
) -> Response:
    with db.unit() as session:
        assessment, row = _visible_assessment(session, principal, assessment_id)
        submissions = session.scalars(
            select(incident_models.IncidentSubmission)
            .where(
                incident_models.IncidentSubmission.incident_id == row.id,
                incident_models.IncidentSubmission.revision <= assessment.submission_revision,
            )
            .order_by(incident_models.IncidentSubmission.revision)
        )
        inputs: dict[str, Any] = dict(assessment.inputs or {})
        judgements = [
            JudgementFact(
                level=j["level"],
                rationale=j["rationale"],
                by=j["by"],
                at=j["at"],
                source=j["source"],
                subject_ref=j.get("subject_ref"),
            )
            for j in inputs.get("judgements", [])
        ]
        officer = (inputs.get("incident") or {}).get("officer_assessment") or {}
        if officer.get("professional_judgement"):
            judgements.insert(
                0,
                JudgementFact(
                    level=officer["professional_judgement"],
                    rationale=officer.get("rationale"),
                    by=(inputs["incident"].get("source") or {}).get("submitted_by") or "submitter",
                    at=inputs["incident"].get("reported_at") or inputs["incident"]["occurred_at"],
                    source="officer_assessment",
                ),
            )
        out = Explanation(
            incident_id=str(row.id),
            assessment=assessment_out(assessment),
            trigger=assessment.trigger,
            inputs=inputs,
            definitions=_definitions_used(session, assessment),
            classifier=(assessment.result or {}).get("classifier"),
            combination_policy=(assessment.result or {}).get(
                "combination_policy", COMBINATION_POLICY
            ),
            submissions=[
                SubmissionFact(
                    revision=s.revision,
                    kind=s.kind,
                    received_at=s.received_at,
                    principal_id=s.principal_id,
                    submitted_by=((s.body or {}).get("source") or {}).get("submitted_by"),
                    body_sha256=s.body_sha256,
                )
                for s in submissions
            ],
            judgements=judgements,
        )
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="assessment",
            record_ids=[assessment.id, row.id],
            person_ids=person_ids(session, row.id),
            payload=body,
            detail={"explanation": 1},
            principal=principal,
        )
        return json_response(body)


def reproduce_differences(
    session: Session, assessment: models.Assessment, model: LoadedModel | None
) -> list[ScoringDifference]:
    """Re-run the stored inputs through the stored definitions and the stored policy."""
    inputs = assessment.inputs or {}
    stored = dict(assessment.result or {})
    stored.pop("flag_rules", None)  # recorded beside the evaluation, not part of it
    registry = _registry_as_used(session, assessment)
    try:
        definitions = DefinitionSet(
            victim_checklists={
                assessment.victim_checklist_id: registry.victim_checklist(
                    f"{assessment.victim_checklist_id}@{assessment.victim_checklist_version}"
                )
            },
            child_risk=registry.child_risk(
                f"{assessment.child_checklist_id}@{assessment.child_checklist_version}"
            ),
        )
    except LookupError as exc:
        return [ScoringDifference("/definitions", None, f"cannot re-run: {exc}")]
    stored_classifier = stored.get("classifier") or {}
    policy = stored_classifier.get("policy") or {}
    use_model = (
        model if model is not None and model.sha256 == assessment.classifier_sha256 else None
    )
    recomputed = evaluate(
        stored_incident(inputs["incident"]),
        History.from_dict(inputs["history"]),
        definitions,
        [Judgement.from_dict(j) for j in inputs.get("judgements", [])],
        ClassifierPolicy(
            model=use_model,
            threshold=(
                policy.get("threshold")
                if policy.get("threshold_source") == "area configuration"
                else None
            ),
            may_raise_level=bool(policy.get("may_raise_level", False)),
        ),
    )
    differences = compare(stored, recomputed)
    if assessment.classifier_sha256 and use_model is None:
        differences.append(
            ScoringDifference(
                "/classifier/model_sha256",
                assessment.classifier_sha256,
                "that model is not loaded in this service; its output cannot be re-run",
            )
        )
    return differences


def _registry_as_used(session: Session, assessment: models.Assessment) -> DefinitionRegistry:
    """The definitions exactly as this assessment used them, from their stored snapshots.

    A past score therefore reproduces even after a newer version became active, or after
    the file it came from was changed or removed.
    """
    definitions = {}
    for sha in (assessment.victim_checklist_sha256, assessment.child_checklist_sha256):
        snapshot = session.get(models.DefinitionSnapshot, sha)
        if snapshot is None:
            continue
        definition = definition_from_document(snapshot.body, f"snapshot {sha[:12]}")
        definitions[(definition.ref.id, definition.ref.version)] = definition
    return DefinitionRegistry(definitions, Path("stored-snapshots"))


@router.post(
    "/assessments/{assessment_id}/reproduce",
    response_model=Reproduction,
    operation_id="reproduce_assessment",
    summary="Re-run the stored inputs through the stored definitions; report any difference",
    responses=problem_responses(410, *COMMON_PROBLEMS),
    dependencies=[REQUIRE_PURPOSE],
)
def reproduce_assessment(
    request: Request,
    assessment_id: uuid.UUID,
    db: DatabaseDep,
    principal: Annotated[Principal, Depends(authorize("assessment.reproduce"))],
) -> Response:
    with db.unit() as session:
        assessment, row = _visible_assessment(session, principal, assessment_id)
        differences = reproduce_differences(
            session, assessment, request.app.state.scoring.classifier
        )
        out = Reproduction(
            assessment_id=str(assessment.id),
            identical=not differences,
            differences=[Difference(**d.to_dict()) for d in differences],
        )
        body = out.model_dump(mode="json", by_alias=True)
        record(
            request,
            session,
            operation="consult",
            deferred=True,
            record_type="assessment",
            record_ids=[assessment.id, row.id],
            person_ids=person_ids(session, row.id),
            payload=body,
            detail={"reproduce": 1, "identical": int(out.identical)},
            principal=principal,
        )
        return json_response(body)


class ChecklistSummary(BaseModel):
    id: str
    version: str
    kind: str
    sha256: str
    active_by_default: bool


@router.get(
    "/checklists",
    response_model=list[ChecklistSummary],
    operation_id="list_checklists",
    summary="Published checklist definitions (every loaded version)",
    tags=["checklists"],
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[Depends(authorize("checklist.read"))],
)
def list_checklists(request: Request) -> list[ChecklistSummary]:
    context = request.app.state.scoring
    defaults = {
        context.settings.victim_checklist,
        context.settings.police_checklist,
        context.settings.child_checklist,
    }
    return [
        ChecklistSummary(
            id=d.ref.id,
            version=d.ref.version,
            kind=d.document().get("kind", ""),
            sha256=d.ref.sha256,
            active_by_default=d.ref.key in defaults,
        )
        for d in context.definitions
    ]


@router.get(
    "/checklists/{checklist_id}/versions/{version}",
    response_model=DefinitionUsed,
    operation_id="get_checklist_version",
    summary="One checklist definition exactly as published, with its sha256",
    tags=["checklists"],
    responses=problem_responses(*COMMON_PROBLEMS),
    dependencies=[Depends(authorize("checklist.read"))],
)
def get_checklist(request: Request, checklist_id: str, version: str) -> DefinitionUsed:
    try:
        d = request.app.state.scoring.definitions.get(checklist_id, version)
    except LookupError as exc:
        raise NotFound("No such checklist version.") from exc
    return DefinitionUsed(
        kind=d.document().get("kind", ""),
        id=d.ref.id,
        version=d.ref.version,
        sha256=d.ref.sha256,
        definition=d.document(),
    )
