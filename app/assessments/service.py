"""Score an incident version, store the assessment (inputs, result, definitions) and its flags.

Runs inside the caller's unit of work. Assessments are never changed after they are
written; a revision or a judgement adds a version. Flags are reconciled by their dedupe
key: a new version adds the flags that are newly due, never closes one that is being
worked, and marks for review (never deletes) a flag whose condition no longer holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from app.assessments import models
from app.assessments.context import ScoringContext
from app.assessments.pipeline import evaluate
from app.flags.engine import FlagProposal, evaluate_flags
from app.flags.models import OPEN_STATUSES, Flag, FlagEvent
from app.flags.queue import lock_incident, refresh_queue_row
from app.flags.store import flag_from_proposal
from app.incidents import models as incident_models
from app.incidents.schemas import Incident
from app.scoring.history import History
from app.scoring.judgement import Judgement
from app.scoring.results import CHILD_RANK, VICTIM_RANK


def risk_rank(result: dict[str, Any]) -> int:
    """Queue ranking: the highest of the victim's level and every child's level."""
    ranks = [VICTIM_RANK[result["victim"]["level"]]]
    ranks += [CHILD_RANK[c["level"]] for c in result["children"]]
    return max(ranks)


def build_history(session: Session, row: incident_models.Incident, incident: Incident) -> History:
    """The history the engine receives: what the submitter reported, plus what is stored."""
    from app.people.history import stored_history  # the people package owns linking

    return stored_history(session, row, incident, History.reported(incident))


def assess_and_store(
    session: Session,
    context: ScoringContext,
    *,
    row: incident_models.Incident,
    incident: Incident,
    submission_revision: int,
    trigger: str,
    principal_id: str,
    judgements: Sequence[Judgement] = (),
    now: datetime,
    flag_base_time: datetime | None = None,
) -> tuple[models.Assessment, list[Flag]]:
    # The incident's lock before any of its flags' (the order flag changes take them in).
    lock_incident(session, row.id)
    definitions = context.definition_set(row.area)
    rules = context.rules(row.area)
    history = build_history(session, row, incident)
    classifier = context.classifier_policy(row.area)
    result = evaluate(incident, history, definitions, judgements, classifier)
    result["flag_rules"] = {"id": rules.id, "version": rules.version, "sha256": rules.sha256}

    checklist = definitions.victim_checklist(incident.victim_checklist.instrument)
    child_risk = definitions.child_risk
    for kind, definition_id, version, sha256, body in (
        (
            "victim_checklist",
            checklist.ref.id,
            checklist.ref.version,
            checklist.ref.sha256,
            checklist.document(),
        ),
        (
            "child_risk",
            child_risk.ref.id,
            child_risk.ref.version,
            child_risk.ref.sha256,
            child_risk.document(),
        ),
        ("flag_rules", rules.id, rules.version, rules.sha256, rules.document()),
    ):
        snapshot_definition(session, kind, definition_id, version, sha256, body, now)

    stored = models.Assessment(
        incident_id=row.id,
        version=next_version(session, row.id),
        trigger=trigger,
        created_at=now,
        created_by=principal_id,
        submission_revision=submission_revision,
        inputs={
            "incident": incident.model_dump(mode="json"),
            "history": history.to_dict(),
            "judgements": [j.to_dict() for j in judgements],
        },
        result=result,
        victim_level=result["victim"]["level"],
        risk_rank=risk_rank(result),
        marac_refer=bool(result["victim"]["marac"]["refer"]),
        victim_checklist_id=checklist.ref.id,
        victim_checklist_version=checklist.ref.version,
        victim_checklist_sha256=checklist.ref.sha256,
        child_checklist_id=child_risk.ref.id,
        child_checklist_version=child_risk.ref.version,
        child_checklist_sha256=child_risk.ref.sha256,
        flag_rules_sha256=rules.sha256,
        classifier_sha256=classifier.model.sha256 if classifier.model is not None else None,
    )
    session.add(stored)
    session.flush()
    proposals = evaluate_flags(
        incident, result, rules, context.calendar, now_reference=flag_base_time
    )
    # Patterns across incidents (app/people/patterns.py): this incident's share is
    # reconciled with the rules' flags; then the other open cases the pattern reaches.
    from app.people import patterns

    proposals += patterns.pattern_proposals(
        session,
        context,
        row=row,
        incident=incident,
        result=result,
        proposals=proposals,
        flag_base_time=flag_base_time,
    )
    flags = reconcile_flags(
        session,
        row=row,
        assessment=stored,
        proposals=proposals,
        principal_id=principal_id,
        now=now,
    )
    refresh_queue_row(session, row.id)
    patterns.propagate(
        session, context, row=row, incident=incident, principal_id=principal_id, now=now
    )
    return stored, flags


def next_version(session: Session, incident_id: uuid.UUID) -> int:
    current = session.scalar(
        select(func.max(models.Assessment.version)).where(
            models.Assessment.incident_id == incident_id
        )
    )
    return int(current or 0) + 1


def snapshot_definition(
    session: Session,
    kind: str,
    definition_id: str,
    version: str,
    sha256: str,
    body: dict[str, Any],
    now: datetime,
) -> None:
    if session.get(models.DefinitionSnapshot, sha256) is None:
        session.add(
            models.DefinitionSnapshot(
                sha256=sha256,
                kind=kind,
                definition_id=definition_id,
                version=version,
                body=body,
                first_used_at=now,
            )
        )
        session.flush()


def reconcile_flags(
    session: Session,
    *,
    row: incident_models.Incident,
    assessment: models.Assessment,
    proposals: Sequence[FlagProposal],
    principal_id: str,
    now: datetime,
) -> list[Flag]:
    """Add newly due flags; mark open flags whose condition no longer holds for review."""
    existing = {
        f.dedupe_key: f for f in session.scalars(select(Flag).where(Flag.incident_id == row.id))
    }
    person_of = {p.ref: p.person_id for p in row.persons}
    proposed_keys = set()
    added: list[Flag] = []
    for p in proposals:
        proposed_keys.add(p.dedupe_key)
        flag = existing.get(p.dedupe_key)
        if flag is not None:
            if flag.needs_review:  # the condition holds again
                flag.needs_review = False
                flag.version += 1  # the representation changed: a new ETag
                flag.updated_at = now
                _history(session, flag, principal_id, "review_cleared", "true", "false", now)
            continue
        flag = flag_from_proposal(
            p,
            incident_id=row.id,
            assessment_id=assessment.id,
            area=row.area,
            subject_person_id=person_of.get(p.subject_ref),
            now=now,
        )
        session.add(flag)
        _history(session, flag, principal_id, "created", None, "open", now)
        added.append(flag)
    for key, flag in existing.items():
        if key not in proposed_keys and flag.status in OPEN_STATUSES and not flag.needs_review:
            flag.needs_review = True
            flag.version += 1
            flag.updated_at = now
            _history(
                session,
                flag,
                principal_id,
                "review_marked",
                "false",
                "true",
                now,
                note=f"assessment version {assessment.version} no longer meets the condition",
            )
    session.flush()
    return added


def _history(
    session: Session,
    flag: Flag,
    principal_id: str,
    change: str,
    from_value: str | None,
    to_value: str | None,
    now: datetime,
    *,
    note: str | None = None,
    role: str = "system",
) -> None:
    session.add(
        FlagEvent(
            flag_id=flag.id,
            at=now,
            principal_id=principal_id,
            role=role,
            change=change,
            from_value=from_value,
            to_value=to_value,
            note=note,
        )
    )


def flags_of_assessment(session: Session, assessment: models.Assessment) -> list[Flag]:
    """Flags of the incident as they stood for this assessment's response."""
    return list(
        session.scalars(
            select(Flag)
            .where(Flag.incident_id == assessment.incident_id)
            .order_by(Flag.priority, Flag.due_at, Flag.type, Flag.subject_ref)
        )
    )
