"""Incident intake: validate, deduplicate, store, score and flag in one unit of work.

The caller's session is the request's unit of work; nothing here commits. Replays are
detected twice: by ``Idempotency-Key`` (scoped to the principal) and by the natural key
``source.system`` + ``source.reference`` (a UNIQUE constraint), so a retry that lost its
key still never creates a second incident.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.assessments.context import ScoringContext
from app.assessments.models import Assessment
from app.assessments.models import Judgement as JudgementRow
from app.assessments.schemas import AssessmentOut
from app.assessments.service import assess_and_store, flags_of_assessment
from app.auth.policy import incident_in_scope
from app.auth.principal import Principal
from app.config import Settings
from app.db import utcnow
from app.errors import Conflict, Forbidden, Gone, NotFound, Unprocessable
from app.flags.models import Flag
from app.flags.schemas import FlagOut
from app.idempotency import service as idempotency
from app.incidents import models, repository
from app.incidents.responses import IntakeResponse
from app.incidents.schemas import Incident
from app.people.linking import PreviousLink, link_incident_persons
from app.scoring.judgement import Judgement

INTAKE_ROUTE = "POST /v1/incidents"


@dataclass(frozen=True)
class IntakeResult:
    status_code: int
    body: dict[str, Any]
    location: str
    incident_id: uuid.UUID
    replayed: bool


def incident_location(incident_id: uuid.UUID | str) -> str:
    return f"/v1/incidents/{incident_id}"


def check_source_system(principal: Principal, incident: Incident) -> None:
    if principal.source_system is not None and incident.source.system != principal.source_system:
        raise Forbidden("This credential may only submit incidents for its own source system.")


def intake(
    session: Session,
    *,
    principal: Principal,
    incident: Incident,
    raw_body: bytes,
    fingerprint: str,
    idempotency_key: str | None,
    context: ScoringContext,
    now: datetime | None = None,
) -> IntakeResult:
    now = now or utcnow()
    settings = context.settings
    check_source_system(principal, incident)

    if idempotency_key is not None:
        replay = idempotency.lookup(
            session,
            principal_id=principal.id,
            key=idempotency_key,
            route=INTAKE_ROUTE,
            fingerprint=fingerprint,
            now=now,
        )
        if replay is not None and replay.body is not None and replay.location:
            return IntakeResult(
                200,
                replay.body,
                replay.location,
                uuid.UUID(str(replay.body["incident_id"])),
                replayed=True,
            )

    existing = repository.get_by_source(session, incident.source.system, incident.source.reference)
    if existing is not None:
        return _replay_or_conflict(session, existing, fingerprint)

    result = _create(
        session,
        principal=principal,
        incident=incident,
        raw_body=raw_body,
        fingerprint=fingerprint,
        context=context,
        now=now,
    )
    if idempotency_key is not None:
        idempotency.remember(
            session,
            principal_id=principal.id,
            key=idempotency_key,
            route=INTAKE_ROUTE,
            fingerprint=fingerprint,
            status_code=result.status_code,
            body=result.body,
            location=result.location,
            retention_days=settings.idempotency_retention_days,
            now=now,
        )
    return result


def _replay_or_conflict(
    session: Session, existing: models.Incident, fingerprint: str
) -> IntakeResult:
    location = incident_location(existing.id)
    if existing.original_sha256 == fingerprint and existing.erased_at is None:
        original = repository.submission(session, existing.id, 1)
        if original is not None and original.response_body is not None:
            return IntakeResult(200, original.response_body, location, existing.id, replayed=True)
    raise Conflict(
        "An incident with this source system and reference already exists with different "
        "content; submit changes to it as a revision.",
        incident_id=str(existing.id),
        incident_location=location,
    )


def _create(
    session: Session,
    *,
    principal: Principal,
    incident: Incident,
    raw_body: bytes,
    fingerprint: str,
    context: ScoringContext,
    now: datetime,
) -> IntakeResult:
    settings = context.settings
    row = models.Incident(
        source_system=incident.source.system,
        source_reference=incident.source.reference,
        area=incident.area,
        occurred_at=incident.occurred_at,
        reported_at=incident.reported_at,
        received_at=now,
        updated_at=now,
        created_by=principal.id,
        version=1,
        original_sha256=fingerprint,
        review_due_at=_add_years(now, settings.review_years_standard),
    )
    session.add(row)
    session.flush()
    submission = models.IncidentSubmission(
        incident_id=row.id,
        revision=1,
        kind="original",
        received_at=now,
        principal_id=principal.id,
        body_sha256=fingerprint,
        body_raw=raw_body.decode("utf-8"),
        body=incident.model_dump(mode="json"),
    )
    session.add(submission)
    link_persons(session, row, incident)
    session.flush()
    session.refresh(row, ["persons"])

    assessment, _ = assess_and_store(
        session,
        context,
        row=row,
        incident=incident,
        submission_revision=1,
        trigger="intake",
        principal_id=principal.id,
        now=now,
    )
    _set_review_date(row, assessment.risk_rank, settings)
    body = result_body(session, row, assessment, now)
    submission.response_body = body
    session.flush()
    return IntakeResult(201, body, incident_location(row.id), row.id, replayed=False)


def result_body(
    session: Session, row: models.Incident, assessment: Assessment, now: datetime
) -> dict[str, Any]:
    """The contract's intake body for one assessment version of an incident."""
    return IntakeResponse(
        incident_id=str(row.id),
        version=row.version,
        received_at=row.received_at,
        assessment=assessment_out(assessment),
        flags=[FlagOut.of(f, now) for f in flags_of_assessment(session, assessment)],
    ).model_dump(mode="json")


def assessment_out(assessment: Assessment) -> AssessmentOut:
    if assessment.result is None:
        raise Gone("This assessment's content was erased.")
    return AssessmentOut.model_validate(
        {
            **assessment.result,
            "id": str(assessment.id),
            "version": assessment.version,
            "created_at": assessment.created_at,
        }
    )


def _set_review_date(row: models.Incident, risk_rank: int, settings: Settings) -> None:
    # Retention review (DPA 2018 s.39): longer for cases that were high risk for anyone.
    years = settings.review_years_high if risk_rank >= 2 else settings.review_years_standard
    row.review_due_at = _add_years(row.received_at, years)


def revise(
    session: Session,
    *,
    principal: Principal,
    row: models.Incident,
    incident: Incident,
    raw_body: bytes,
    fingerprint: str,
    context: ScoringContext,
    now: datetime | None = None,
) -> IntakeResult:
    """A new submission of an existing incident: stored verbatim, re-scored as a new version."""
    now = now or utcnow()
    check_source_system(principal, incident)
    if (incident.source.system, incident.source.reference) != (
        row.source_system,
        row.source_reference,
    ):
        raise Unprocessable(
            "A revision must keep the incident's source system and reference.",
            errors=[{"loc": ["body", "source"], "msg": "differs from the stored incident"}],
        )
    latest = repository.latest_submission(session, row.id)
    if latest is not None and latest.body_sha256 == fingerprint and latest.response_body:
        return IntakeResult(200, latest.response_body, incident_location(row.id), row.id, True)
    revision = row.version + 1
    submission = models.IncidentSubmission(
        incident_id=row.id,
        revision=revision,
        kind="revision",
        received_at=now,
        principal_id=principal.id,
        body_sha256=fingerprint,
        body_raw=raw_body.decode("utf-8"),
        body=incident.model_dump(mode="json"),
    )
    session.add(submission)
    row.version = revision
    row.updated_at = now
    if incident.area != row.area:
        # A corrected area moves the case, and its flags with it, to that area's teams.
        session.execute(update(Flag).where(Flag.incident_id == row.id).values(area=incident.area))
    row.area = incident.area
    row.occurred_at = incident.occurred_at
    row.reported_at = incident.reported_at
    for old in list(row.persons):
        session.delete(old)
    session.flush()
    link_persons(session, row, incident)
    session.flush()
    session.refresh(row, ["persons"])
    assessment, _ = assess_and_store(
        session,
        context,
        row=row,
        incident=incident,
        submission_revision=revision,
        trigger="revision",
        principal_id=principal.id,
        judgements=stored_judgements(session, row.id),
        now=now,
        flag_base_time=now,
    )
    _set_review_date(
        row, max(assessment.risk_rank, current_max_rank(session, row.id)), context.settings
    )
    body = result_body(session, row, assessment, now)
    submission.response_body = body
    session.flush()
    return IntakeResult(201, body, incident_location(row.id), row.id, replayed=False)


def judge(
    session: Session,
    *,
    principal: Principal,
    row: models.Incident,
    level: str,
    rationale: str,
    context: ScoringContext,
    now: datetime | None = None,
) -> IntakeResult:
    """Record a professional judgement and produce a new assessment version."""
    now = now or utcnow()
    latest = repository.latest_submission(session, row.id)
    if latest is None or latest.body is None:
        raise Gone("This incident's content was erased.")
    incident = Incident.model_validate(latest.body)
    judgement = Judgement(level=level, rationale=rationale, by=principal.id, at=now)  # type: ignore[arg-type]
    judgements = [*stored_judgements(session, row.id), judgement]
    assessment, _ = assess_and_store(
        session,
        context,
        row=row,
        incident=incident,
        submission_revision=latest.revision,
        trigger="judgement",
        principal_id=principal.id,
        judgements=judgements,
        now=now,
        flag_base_time=now,
    )
    session.add(
        JudgementRow(
            incident_id=row.id,
            assessment_id=assessment.id,
            level=level,
            rationale=rationale,
            by=principal.id,
            at=now,
        )
    )
    row.updated_at = now
    _set_review_date(
        row, max(assessment.risk_rank, current_max_rank(session, row.id)), context.settings
    )
    session.flush()
    return IntakeResult(
        201, result_body(session, row, assessment, now), incident_location(row.id), row.id, False
    )


def stored_judgements(session: Session, incident_id: uuid.UUID) -> list[Judgement]:
    rows = session.scalars(
        select(JudgementRow)
        .where(JudgementRow.incident_id == incident_id)
        .order_by(JudgementRow.at)
    )
    return [
        Judgement(level=j.level, rationale=j.rationale or "", by=j.by, at=j.at)  # type: ignore[arg-type]
        for j in rows
    ]


def current_max_rank(session: Session, incident_id: uuid.UUID) -> int:
    return int(
        session.scalar(
            select(func.max(Assessment.risk_rank)).where(Assessment.incident_id == incident_id)
        )
        or 0
    )


def link_persons(session: Session, row: models.Incident, incident: Incident) -> None:
    """Attach each person to a stored person (rules and precedence: app/people/linking.py)."""
    # On a revision, `revise` has just deleted the previous rows; they are still in the
    # loaded collection, and linking keeps a person no evidence links on the same record.
    previous = {p.ref: PreviousLink(person_id=p.person_id, rule=p.link_rule) for p in row.persons}
    link_incident_persons(session, row, incident, previous=previous, now=row.updated_at)


def _add_years(moment: datetime, years: int) -> datetime:
    try:
        return moment.replace(year=moment.year + years)
    except ValueError:  # 29 February
        return moment.replace(year=moment.year + years, day=28)


def person_ids(session: Session, incident_id: uuid.UUID) -> list[uuid.UUID]:
    row = repository.get(session, incident_id)
    return [p.person_id for p in row.persons] if row is not None else []


INCIDENT_NOT_VISIBLE = "No incident with this id is visible to you."


def visible_incident(
    session: Session,
    principal: Principal,
    incident_id: uuid.UUID,
    message: str = INCIDENT_NOT_VISIBLE,
) -> models.Incident:
    """The incident if ``principal`` may see it; otherwise the same 404 as a missing one
    (OWASP API1: nothing reveals that a record outside the caller's scope exists)."""
    row = repository.get(session, incident_id)
    if row is None or not incident_in_scope(
        session, principal, incident_id=row.id, area=row.area, source_system=row.source_system
    ):
        raise NotFound(message)
    return row
