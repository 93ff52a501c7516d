"""The write path: intake, revision and judgement, each one pass through the domains.

Every version of an assessment is made the same way (``_assess``): link the persons
(app/people/linking.py), read their stored history in one pass (app/people/history.py),
score with the pure engine and the optional classifier (app/assessments/pipeline.py),
evaluate the versioned flag rules and the patterns across incidents, then write every row
in batched statements, in foreign-key order. Nothing here commits: the caller's unit of
work does, after the audit append (app/idempotency/writes.py).

Reads come first and are set-wise; writes come last and are batched. For a new incident
about people the service has never seen, that is: the natural-key lookup, the holders of
its identifiers and name keys, and one insert per table (plus, on PostgreSQL, one
statement taking the per-person advisory locks).

Concurrency: intakes, revisions and judgements that could touch the same incident, person
or source reference take transaction-scoped advisory locks on them first, in sorted order
(PostgreSQL; SQLite serialises writers), and only then read. The audit chain's lock is
taken by the caller at the very end, so two intakes overlap in everything but that append.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy.orm import Session

from app.assessments import repository as assessment_repository
from app.assessments.pipeline import evaluate
from app.assessments.service import assessment_json, risk_rank
from app.audit.chain import AuditEntry
from app.auth.principal import Principal
from app.config import Settings
from app.contract.incident import Incident, stored_incident
from app.db import lock_keys, new_id, utcnow
from app.errors import Conflict, Gone, Unprocessable
from app.flags import repository as flag_repository
from app.flags.engine import evaluate_flags
from app.flags.models import OPEN_STATUSES, Flag
from app.flags.queue import insert_queue_row, queue_values, refresh_queue_row
from app.flags.schemas import flag_json
from app.flags.store import (
    NewFlag,
    child_school_urns,
    flag_event_row,
    flag_from_proposal,
    flag_rows,
)
from app.incidents import models, repository
from app.incidents.service import check_source_system, incident_location
from app.intake import patterns
from app.intake.context import ScoringContext
from app.notify import outbox
from app.notify import repository as notify_repository
from app.people import repository as people_repository
from app.people.history import StoredRecords, stored_history, stored_records
from app.people.linking import (
    EVIDENCE_RULES,
    LinkedPerson,
    LinkPlan,
    PreviousLink,
    lock_keys_of,
    plan_links,
)
from app.responses import json_datetime
from app.scoring.history import History
from app.scoring.judgement import Judgement

SYSTEM_ROLE = "system"


@dataclass(frozen=True)
class IntakeResult:
    """The outcome of one intake, revision or judgement."""

    status_code: int
    body: dict[str, Any]
    location: str
    incident_id: uuid.UUID
    replayed: bool
    person_ids: list[uuid.UUID] = field(default_factory=list)
    # Flags added to other open cases by a pattern (audited as the system's change).
    pattern_audit: AuditEntry | None = None
    # Persons linked to known records on evidence (audited as combinations).
    links: list[LinkedPerson] = field(default_factory=list)


# --------------------------------------------------------------------------- intake


def submit(
    session: Session,
    context: ScoringContext,
    *,
    principal: Principal,
    incident: Incident,
    raw_body: bytes,
    fingerprint: str,
    now: dt.datetime | None = None,
) -> IntakeResult:
    """A new incident; or, for its natural key seen before, a replay (200) or a 409."""
    now = now or utcnow()
    check_source_system(principal, incident)
    system, reference = incident.source.system, incident.source.reference
    # Locks first: a concurrent identical submission waits here, then sees this one.
    lock_keys(session, [_source_key(system, reference), *lock_keys_of(incident)])
    existing = repository.by_source(session, system, reference)
    if existing is not None:
        return _replay_or_conflict(
            session, existing.id, existing.original_sha256, existing.erased_at, fingerprint
        )

    incident_id = new_id()
    plan = plan_links(session, incident, now=now, locked=True)
    version = _assess(
        session,
        context,
        incident=incident,
        incident_id=incident_id,
        area=incident.area,
        occurred_at=incident.occurred_at,
        plan=plan,
        fresh=_fresh(plan),
        judgements=(),
        existing_flags=[],
        assessment_version=1,
        trigger="intake",
        principal_id=principal.id,
        now=now,
        flag_base_time=None,
        submission_revision=1,
    )
    review_due = _review_due(now, version.rank, context.settings)
    body = _body(incident_id, 1, now, version)
    repository.insert_incident(
        session,
        {
            "id": incident_id,
            "source_system": system,
            "source_reference": reference,
            "area": incident.area,
            "occurred_at": incident.occurred_at,
            "reported_at": incident.reported_at,
            "received_at": now,
            "updated_at": now,
            "created_by": principal.id,
            "version": 1,
            "original_sha256": fingerprint,
            "review_due_at": review_due,
            "erased_at": None,
            "erased_by": None,
            "erasure_reason": None,
        },
    )
    repository.insert_submission(
        session,
        _submission(
            incident_id, 1, "original", principal, raw_body, fingerprint, version, body, now
        ),
    )
    version.write(session, plan, incident_id, incident, new_incident=True)
    pattern_audit = patterns.propagate(
        session, context, stored=version.stored, principal_id=principal.id, now=now
    )
    return IntakeResult(
        201,
        body,
        incident_location(incident_id),
        incident_id,
        replayed=False,
        person_ids=[p.person_id for p in plan.persons],
        pattern_audit=pattern_audit,
        links=[p for p in plan.persons if p.rule in EVIDENCE_RULES],
    )


def _replay_or_conflict(
    session: Session,
    incident_id: uuid.UUID,
    original_sha256: str,
    erased_at: dt.datetime | None,
    fingerprint: str,
) -> IntakeResult:
    location = incident_location(incident_id)
    if original_sha256 == fingerprint and erased_at is None:
        original = repository.original_response(session, incident_id)
        if original is not None:
            row = repository.get(session, incident_id)
            persons = [p.person_id for p in row.persons] if row is not None else []
            return IntakeResult(200, original, location, incident_id, True, persons)
    raise Conflict(
        "An incident with this source system and reference already exists with different "
        "content; submit changes to it as a revision.",
        incident_id=str(incident_id),
        incident_location=location,
    )


# --------------------------------------------------------------------------- revision


def revise(
    session: Session,
    context: ScoringContext,
    *,
    principal: Principal,
    row: models.Incident,
    incident: Incident,
    raw_body: bytes,
    fingerprint: str,
    now: dt.datetime | None = None,
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
    lock_keys(
        session, [_source_key(row.source_system, row.source_reference), *lock_keys_of(incident)]
    )
    repository.lock_incident(session, row.id)
    latest = repository.latest_submission(session, row.id)
    if latest is not None and latest.body_sha256 == fingerprint and latest.response_body:
        return IntakeResult(
            200,
            latest.response_body,
            incident_location(row.id),
            row.id,
            True,
            [p.person_id for p in row.persons],
        )
    revision = row.version + 1
    previous = {p.ref: PreviousLink(person_id=p.person_id, rule=p.link_rule) for p in row.persons}
    if incident.area != row.area:
        flag_repository.move_to_area(session, row.id, incident.area)
    repository.delete_incident_persons(session, row.id)
    plan = plan_links(session, incident, previous=previous, now=now, locked=True)
    version = _assess(
        session,
        context,
        incident=incident,
        incident_id=row.id,
        area=incident.area,
        occurred_at=incident.occurred_at,
        plan=plan,
        fresh=_fresh(plan),
        judgements=_stored_judgements(session, row.id),
        existing_flags=flag_repository.flags_of_incident(session, row.id),
        assessment_version=assessment_repository.next_version(session, row.id),
        trigger="revision",
        principal_id=principal.id,
        now=now,
        flag_base_time=now,
        submission_revision=revision,
    )
    rank = max(version.rank, assessment_repository.highest_rank(session, row.id))
    body = _body(row.id, revision, row.received_at, version)
    repository.update_incident(
        session,
        row.id,
        {
            "version": revision,
            "updated_at": now,
            "area": incident.area,
            "occurred_at": incident.occurred_at,
            "reported_at": incident.reported_at,
            "review_due_at": _review_due(row.received_at, rank, context.settings),
        },
    )
    repository.insert_submission(
        session,
        _submission(
            row.id, revision, "revision", principal, raw_body, fingerprint, version, body, now
        ),
    )
    version.write(session, plan, row.id, incident, new_incident=False)
    pattern_audit = patterns.propagate(
        session, context, stored=version.stored, principal_id=principal.id, now=now
    )
    return IntakeResult(
        201,
        body,
        incident_location(row.id),
        row.id,
        replayed=False,
        person_ids=[p.person_id for p in plan.persons],
        pattern_audit=pattern_audit,
        # Only links this revision makes anew: one kept from the last revision was logged then.
        links=[
            p
            for p in plan.persons
            if p.rule in EVIDENCE_RULES
            and (p.ref not in previous or previous[p.ref].person_id != p.person_id)
        ],
    )


# --------------------------------------------------------------------------- judgement


def judge(
    session: Session,
    context: ScoringContext,
    *,
    principal: Principal,
    row: models.Incident,
    level: str,
    rationale: str,
    subject_ref: str | None = None,
    now: dt.datetime | None = None,
) -> IntakeResult:
    """Record a professional judgement (of the victim, or of the child ``subject_ref``) and
    produce a new assessment version."""
    now = now or utcnow()
    repository.lock_incident(session, row.id)
    latest = repository.latest_submission(session, row.id)
    if latest is None or latest.body is None:
        raise Gone("This incident's content was erased.")
    incident = stored_incident(latest.body)
    if subject_ref is not None and subject_ref not in {c.ref for c in incident.children}:
        # The ref is the client's: never echoed.
        raise Unprocessable(
            "subject_ref names no child of this incident; a judgement is of the victim "
            "(no subject_ref) or of one of the incident's children.",
            errors=[{"loc": ["body", "subject_ref"], "msg": "not a child of this incident"}],
        )
    judgement = Judgement(
        level=level,  # type: ignore[arg-type]
        rationale=rationale,
        by=principal.id,
        at=now,
        subject_ref=subject_ref,
    )
    records = {p.ref: p.person_id for p in row.persons}
    plan = LinkPlan(
        persons=[],
        graph=people_repository.merge_graph(session, set(records.values())),
    )
    version = _assess(
        session,
        context,
        incident=incident,
        incident_id=row.id,
        area=row.area,
        occurred_at=row.occurred_at,
        plan=plan,
        records=records,
        fresh=frozenset(),
        judgements=[*_stored_judgements(session, row.id), judgement],
        existing_flags=flag_repository.flags_of_incident(session, row.id),
        assessment_version=assessment_repository.next_version(session, row.id),
        trigger="judgement",
        principal_id=principal.id,
        now=now,
        flag_base_time=now,
        submission_revision=latest.revision,
    )
    version.write(session, plan, row.id, incident, new_incident=False)
    assessment_repository.insert_judgement(
        session,
        {
            "id": new_id(),
            "incident_id": row.id,
            "assessment_id": version.assessment.id,
            "level": level,
            "subject_ref": subject_ref,
            "rationale": rationale,
            "by": principal.id,
            "at": now,
        },
    )
    rank = max(version.rank, assessment_repository.highest_rank(session, row.id))
    repository.update_incident(
        session,
        row.id,
        {"updated_at": now, "review_due_at": _review_due(row.received_at, rank, context.settings)},
    )
    pattern_audit = patterns.propagate(
        session, context, stored=version.stored, principal_id=principal.id, now=now
    )
    return IntakeResult(
        201,
        _body(row.id, row.version, row.received_at, version),
        incident_location(row.id),
        row.id,
        replayed=False,
        person_ids=list(records.values()),
        pattern_audit=pattern_audit,
    )


# --------------------------------------------------------------------------- one version


@dataclass(slots=True)
class AssessmentRow:
    """A new row of ``assessments`` (written once, never changed)."""

    id: uuid.UUID
    incident_id: uuid.UUID
    version: int
    trigger: str
    created_at: dt.datetime
    created_by: str
    submission_revision: int
    inputs: dict[str, Any]
    result: dict[str, Any]
    victim_level: str
    risk_rank: int
    marac_refer: bool
    victim_checklist_id: str
    victim_checklist_version: str
    victim_checklist_sha256: str
    child_checklist_id: str
    child_checklist_version: str
    child_checklist_sha256: str
    flag_rules_sha256: str | None
    classifier_sha256: str | None

    def row(self) -> dict[str, Any]:
        # Shallow: ``dataclasses.asdict`` would deep-copy the result and inputs.
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class _Version:
    """One assessment version and everything it writes, built before anything is written."""

    assessment: AssessmentRow
    rank: int
    stored: StoredRecords
    new_flags: list[NewFlag]
    flag_events: list[dict[str, Any]]
    # The incident's flags as the response lists them (existing and new).
    flags: list[Flag | NewFlag]
    queue: dict[str, Any] | None
    # The outbox rows this version writes (new flags raised, flags marked for review), and
    # each flag's notification status once they are written (the response shows it).
    notifications: list[dict[str, Any]]
    notified: dict[uuid.UUID, str]

    def write(
        self,
        session: Session,
        plan: LinkPlan,
        incident_id: uuid.UUID,
        incident: Incident,
        *,
        new_incident: bool,
    ) -> None:
        """Insert the version's rows (the incident row must exist) in foreign-key order."""
        plan.write(session)
        if plan.persons:
            repository.insert_incident_persons(
                session, plan.incident_person_rows(incident_id, incident)
            )
        assessment_repository.insert_assessment(session, self.assessment.row())
        flag_repository.insert_flags(session, flag_rows(self.new_flags), self.flag_events)
        # The outbox, in this transaction: new flags, and flags now marked for review.
        outbox.write(session, self.notifications)
        if new_incident:
            if self.queue is not None:
                insert_queue_row(session, incident_id, self.queue)
        else:
            session.flush()
            refresh_queue_row(session, incident_id)


def _assess(
    session: Session,
    context: ScoringContext,
    *,
    incident: Incident,
    incident_id: uuid.UUID,
    area: str,
    occurred_at: dt.datetime,
    plan: LinkPlan,
    fresh: frozenset[uuid.UUID],
    judgements: Sequence[Judgement],
    existing_flags: list[Flag],
    assessment_version: int,
    trigger: str,
    principal_id: str,
    now: dt.datetime,
    flag_base_time: dt.datetime | None,
    submission_revision: int,
    records: dict[str, uuid.UUID] | None = None,
) -> _Version:
    records = records if records is not None else {p.ref: p.person_id for p in plan.persons}
    stored = stored_records(
        session,
        incident,
        records,
        plan.graph,
        incident_id=incident_id,
        occurred_at=occurred_at,
        fresh=fresh,
    )
    history = stored_history(session, stored, History.reported(incident))
    definitions = context.definition_set(area)
    rules = context.rules(area)
    classifier = context.classifier_policy(area)
    result = evaluate(incident, history, definitions, judgements, classifier)
    result["flag_rules"] = {"id": rules.id, "version": rules.version, "sha256": rules.sha256}
    checklist = definitions.victim_checklist(incident.victim_checklist.instrument)
    child_risk = definitions.child_risk
    rank = risk_rank(result)
    incident_json = incident.model_dump(mode="json")
    assessment = AssessmentRow(
        id=new_id(),
        incident_id=incident_id,
        version=assessment_version,
        trigger=trigger,
        created_at=now,
        created_by=principal_id,
        submission_revision=submission_revision,
        inputs={
            "incident": incident_json,
            "history": history.to_dict(),
            "judgements": [j.to_dict() for j in judgements],
        },
        result=result,
        victim_level=result["victim"]["level"],
        risk_rank=rank,
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
    proposals = evaluate_flags(
        incident, result, rules, context.calendar, now_reference=flag_base_time
    )
    proposals += patterns.pattern_proposals(
        context,
        incident=incident,
        area=area,
        result=result,
        proposals=proposals,
        stored=stored,
        flag_base_time=flag_base_time,
    )
    new_flags, events = _reconcile_flags(
        existing_flags,
        proposals,
        incident_id=incident_id,
        assessment=assessment,
        area=area,
        records=records,
        schools=child_school_urns(incident),
        principal_id=principal_id,
        now=now,
    )
    flags: list[Flag | NewFlag] = sorted(
        [*existing_flags, *new_flags], key=lambda f: (f.priority, f.due_at, f.type, f.subject_ref)
    )
    open_flags = [f for f in flags if f.status in OPEN_STATUSES]
    queue = (
        queue_values(
            area=area,
            occurred_at=occurred_at,
            assessment_id=assessment.id,
            assessment_version=assessment_version,
            risk_rank=rank,
            result=result,
            open_flags=len(open_flags),
            earliest_due_at=min(f.due_at for f in open_flags),
        )
        if open_flags
        else None
    )
    notifications, notified = _notifications(session, existing_flags, new_flags, events, now)
    return _Version(
        assessment, rank, stored, new_flags, events, flags, queue, notifications, notified
    )


def _notifications(
    session: Session,
    existing: list[Flag],
    new_flags: list[NewFlag],
    events: list[dict[str, Any]],
    now: dt.datetime,
) -> tuple[list[dict[str, Any]], dict[uuid.UUID, str]]:
    """The outbox rows a version owes its subscribers (new flags raised, existing flags now
    marked for review) and each flag's notification status once they are written."""
    rows = outbox.notifications(session, new_flags, "raised", now)
    marked = {e["flag_id"] for e in events if e["change"] == "review_marked"}
    if marked:
        reviewed = [f for f in existing if f.id in marked]
        rows += outbox.notifications(session, reviewed, "needs_review", now)
    before = notify_repository.status_of_flags(session, [f.id for f in existing])
    return rows, outbox.with_pending(before, rows)


def _reconcile_flags(
    existing: list[Flag],
    proposals: Sequence[Any],
    *,
    incident_id: uuid.UUID,
    assessment: AssessmentRow,
    area: str,
    records: dict[str, uuid.UUID],
    schools: dict[str, str],
    principal_id: str,
    now: dt.datetime,
) -> tuple[list[NewFlag], list[dict[str, Any]]]:
    """Add newly due flags; mark open flags whose condition no longer holds for review.

    A new version never closes a flag that is being worked, and never deletes one: a person
    decides. A flag whose condition holds again loses its review mark. Changes to existing
    flags are made on the loaded objects (the session writes them); new flags are returned.

    ``schools``: each child's school URN in this version of the incident. A flag is seen by
    its subject child's school, so a revision that corrects the school moves the child's
    flags to the corrected school, as a corrected area moves them to that area.
    """
    for kept in existing:
        urn = schools.get(kept.subject_ref) if kept.subject_kind == "child" else None
        if kept.school_urn != urn:
            kept.school_urn = urn
    by_key = {f.dedupe_key: f for f in existing}
    proposed = set()
    added: list[NewFlag] = []
    events: list[dict[str, Any]] = []
    for p in proposals:
        proposed.add(p.dedupe_key)
        flag = by_key.get(p.dedupe_key)
        if flag is not None:
            if flag.needs_review:  # the condition holds again
                flag.needs_review = False
                flag.version += 1  # the representation changed: a new ETag
                flag.updated_at = now
                events.append(_event(flag, principal_id, "review_cleared", "true", "false", now))
            continue
        new = flag_from_proposal(
            p,
            incident_id=incident_id,
            assessment_id=assessment.id,
            area=area,
            subject_person_id=records.get(p.subject_ref),
            school_urn=schools.get(p.subject_ref) if p.subject_kind == "child" else None,
            now=now,
        )
        events.append(_event(new, principal_id, "created", None, "open", now))
        added.append(new)
    for key, flag in by_key.items():
        if key not in proposed and flag.status in OPEN_STATUSES and not flag.needs_review:
            flag.needs_review = True
            flag.version += 1
            flag.updated_at = now
            events.append(
                _event(
                    flag,
                    principal_id,
                    "review_marked",
                    "false",
                    "true",
                    now,
                    note=f"assessment version {assessment.version} no longer meets the condition",
                )
            )
    return added, events


def _event(
    flag: Flag | NewFlag,
    principal_id: str,
    change: str,
    from_value: str | None,
    to_value: str | None,
    now: dt.datetime,
    *,
    note: str | None = None,
) -> dict[str, Any]:
    return flag_event_row(
        flag,
        principal_id=principal_id,
        role=SYSTEM_ROLE,
        change=change,
        from_value=from_value,
        to_value=to_value,
        at=now,
        note=note,
    )


# --------------------------------------------------------------------------- helpers


def _source_key(system: str, reference: str) -> str:
    return f"source:{system}:{reference}"


def _fresh(plan: LinkPlan) -> frozenset[uuid.UUID]:
    return frozenset(p["id"] for p in plan.new_persons)


def _stored_judgements(session: Session, incident_id: uuid.UUID) -> list[Judgement]:
    return [
        Judgement(
            level=j.level,  # type: ignore[arg-type]
            rationale=j.rationale or "",
            by=j.by,
            at=j.at,
            subject_ref=j.subject_ref,
        )
        for j in assessment_repository.judgements_of(session, incident_id)
    ]


def _body(
    incident_id: uuid.UUID, revision: int, received_at: dt.datetime, version: _Version
) -> dict[str, Any]:
    """The contract's intake body (``IntakeResponse``) for one assessment version of an
    incident, built as JSON directly; tests hold it equal to the model's dump."""
    a = version.assessment
    now = a.created_at
    return {
        "incident_id": str(incident_id),
        "version": revision,
        "received_at": json_datetime(received_at),
        "assessment": assessment_json(a.result, a.id, a.version, a.created_at),
        "flags": [flag_json(f, now, version.notified) for f in version.flags],
    }


def _submission(
    incident_id: uuid.UUID,
    revision: int,
    kind: str,
    principal: Principal,
    raw_body: bytes,
    fingerprint: str,
    version: _Version,
    body: dict[str, Any],
    now: dt.datetime,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "incident_id": incident_id,
        "revision": revision,
        "kind": kind,
        "received_at": now,
        "principal_id": principal.id,
        "body_sha256": fingerprint,
        "body_raw": raw_body.decode("utf-8"),
        "body": version.assessment.inputs["incident"],
        "response_body": body,
    }


def _review_due(received_at: dt.datetime, rank: int, settings: Settings) -> dt.datetime:
    # Retention review (DPA 2018 s.39): longer for cases that were high risk for anyone.
    years = settings.review_years_high if rank >= 2 else settings.review_years_standard
    try:
        return received_at.replace(year=received_at.year + years)
    except ValueError:  # 29 February
        return received_at.replace(year=received_at.year + years, day=28)
