"""Patterns across incidents: the flags one incident's assessment cannot raise by itself.

An assessment counts only the history before its incident (order independence), and it
is never rewritten. Two patterns reach further, and add flags to *open cases* (live
incidents with a flag still being worked) without touching any stored assessment:

* **Serial perpetrator across families** (research.md §6: abuse of two or more unconnected
  victims; brief.md: "the perpetrator moves on to a new family and repeats the
  pattern"). Once the stored incidents link a perpetrator to two or more distinct victims,
  each open case of each of those victims gets the ``serial_perpetrator`` flag, with the
  perpetrator as subject, so the earlier family is not forgotten (its children are in
  that case, and the flag reaches whoever works it). The incident being assessed gets it
  too when its own assessment could not count the other victim because that incident
  occurred later (``pattern_proposals``).
* **Late arrivals** (research.md §1.6 MARAC routes 3 and 4). When an incident arrives with
  an earlier ``occurred_at`` than stored ones, each open later incident of the same victim
  is scored again in memory against the history as it now stands; if that meets
  ``potential_escalation`` or ``repeat_marac`` and its stored assessment did not, the case
  gets the ``marac_referral`` flag, whose reason names the late incident. The stored
  assessment stays as it was; a judgement or revision re-scores it with the fuller history.

Flags come from the area's versioned flag rules (the same rule, priority, agency and due
policy, due from the moment the pattern became known), keyed by the rules' own dedupe key,
so a flag already there in any status is never added again, and a later assessment of that
incident that proposes the same flag finds it there. Each addition is kept in the flag's
history and in the audit log (``alter`` of the incidents changed).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import structlog
from sqlalchemy.orm import Session

from app.assessments.context import ScoringContext
from app.audit.chain import AuditEntry, append, digest_of
from app.flags.engine import FlagProposal, Pointer, evaluate_flags
from app.flags.models import Flag, FlagEvent
from app.flags.queue import lock_incident, refresh_queue_row
from app.flags.store import flag_from_proposal
from app.incidents import models
from app.incidents.schemas import Incident
from app.people import repository
from app.people.history import stored_history
from app.scoring.engine import assess
from app.scoring.history import History
from app.scoring.judgement import Judgement

PATTERN_ACTOR_ROLE = "system"
HISTORY_CRITERIA = ("potential_escalation", "repeat_marac")
REASON_MAX_CHARS = 1000


@dataclass(frozen=True)
class SerialPattern:
    """A perpetrator (as a survivor record) and every distinct victim of his stored incidents."""

    perpetrator_id: uuid.UUID
    victims: dict[uuid.UUID, tuple[uuid.UUID, ...]]  # victim survivor → incident ids

    def other_incidents(self, victim_id: uuid.UUID) -> list[uuid.UUID]:
        return sorted(i for v, ids in self.victims.items() if v != victim_id for i in ids)


def serial_pattern(
    session: Session, row: models.Incident, incident: Incident
) -> SerialPattern | None:
    """The perpetrator's victims across every live stored incident, if two or more."""
    record = {p.ref: p.person_id for p in row.persons}[incident.relationship.perpetrator]
    perpetrator = repository.survivor_of(session, record)
    found = repository.incidents_with_victims(session, repository.cluster_of(session, perpetrator))
    survivor = repository.survivors(session, {v for _, _, v in found})
    victims: dict[uuid.UUID, set[uuid.UUID]] = {}
    for incident_id, _, victim_record in found:
        victims.setdefault(survivor[victim_record], set()).add(incident_id)
    if len(victims) < 2:
        return None
    return SerialPattern(perpetrator, {v: tuple(sorted(ids)) for v, ids in victims.items()})


def _victim_of(session: Session, row: models.Incident, incident: Incident) -> uuid.UUID:
    record = {p.ref: p.person_id for p in row.persons}[incident.relationship.victim]
    return repository.survivor_of(session, record)


# --------------------------------------------------------------------------- this incident


def pattern_proposals(
    session: Session,
    context: ScoringContext,
    *,
    row: models.Incident,
    incident: Incident,
    result: dict[str, Any],
    proposals: Sequence[FlagProposal],
    flag_base_time: dt.datetime | None,
) -> list[FlagProposal]:
    """Flags for this incident from patterns its own assessment cannot see.

    Only the serial pattern qualifies: another victim's incident that occurred *after*
    this one is not in this incident's history, yet the perpetrator is serial now.
    Proposing it with the rules' proposals also keeps it from being marked for review when
    this incident is assessed again.
    """
    perpetrator_ref = incident.relationship.perpetrator
    if any(p.type == "serial_perpetrator" and p.subject_ref == perpetrator_ref for p in proposals):
        return []
    pattern = serial_pattern(session, row, incident)
    if pattern is None:
        return []
    proposal = _serial_proposal(
        incident,
        result,
        context,
        row.area,
        flag_base_time,
        pattern,
        pattern.other_incidents(_victim_of(session, row, incident)),
    )
    return [] if proposal is None else [proposal]


def _serial_proposal(
    incident: Incident,
    result: dict[str, Any],
    context: ScoringContext,
    area: str,
    base: dt.datetime | None,
    pattern: SerialPattern,
    other_incidents: list[uuid.UUID],
) -> FlagProposal | None:
    # The area's own serial_perpetrator rule decides type, agency, priority and due time:
    # evaluated as if the assessment had counted the other victims.
    serial_view = {**result, "perpetrator": {**result["perpetrator"], "serial": True}}
    found = [
        p
        for p in evaluate_flags(
            incident, serial_view, context.rules(area), context.calendar, now_reference=base
        )
        if p.type == "serial_perpetrator"
    ]
    if not found:
        return None  # the area's rules do not raise it
    proposal = found[0]
    ids = [str(i) for i in other_incidents]
    reason = (
        f"{proposal.reason}; across families: {len(pattern.victims)} distinct victims in "
        f"stored incidents, other victims in incident(s) {', '.join(ids)}"
    )
    pointer = Pointer.of(
        "stored_pattern",
        rule="serial_perpetrator",
        distinct_victims=len(pattern.victims),
        incident_ids=",".join(ids),
    )
    return dataclasses.replace(proposal, reason=_cut(reason), because=(*proposal.because, pointer))


# --------------------------------------------------------------------------- other cases


def propagate(
    session: Session,
    context: ScoringContext,
    *,
    row: models.Incident,
    incident: Incident,
    principal_id: str,
    now: dt.datetime,
) -> list[Flag]:
    """Add pattern flags to other open cases after this incident's assessment."""
    victim = _victim_of(session, row, incident)
    added: list[Flag] = []
    pattern = serial_pattern(session, row, incident)
    if pattern is not None:
        added += _propagate_serial(session, context, row, victim, pattern, principal_id, now)
    added += _propagate_late(session, context, row, victim, principal_id, now)
    if added:
        _audit(session, row, added, principal_id, now)
    return added


def _propagate_serial(
    session: Session,
    context: ScoringContext,
    row: models.Incident,
    victim: uuid.UUID,
    pattern: SerialPattern,
    principal_id: str,
    now: dt.datetime,
) -> list[Flag]:
    candidates = [i for i in pattern.other_incidents(victim) if i != row.id]
    added = []
    for incident_id in sorted(repository.open_incidents(session, candidates)):
        case = _open_case(session, incident_id)
        if case is None or "serial_perpetrator" in case.flag_types:
            continue
        proposal = _serial_proposal(
            case.incident,
            case.result,
            context,
            case.row.area,
            now,
            pattern,
            pattern.other_incidents(_victim_of(session, case.row, case.incident)),
        )
        if proposal is not None:
            added += _add(session, case, [proposal], principal_id, now, via=row.id)
    return added


def _propagate_late(
    session: Session,
    context: ScoringContext,
    row: models.Incident,
    victim: uuid.UUID,
    principal_id: str,
    now: dt.datetime,
) -> list[Flag]:
    later = repository.incidents_in_role(
        session,
        repository.cluster_of(session, victim),
        "victim",
        after=row.occurred_at,
        exclude=row.id,
    )
    added = []
    for incident_id in sorted(repository.open_incidents(session, [i for i, _ in later])):
        case = _open_case(session, incident_id)
        if case is None or "marac_referral" in case.flag_types:
            continue
        stored = set(case.result["victim"]["marac"]["criteria"])
        # The pure engine, on the case as stored and the history as it stands now.
        history = stored_history(session, case.row, case.incident, History.reported(case.incident))
        judgements = [
            Judgement(level=j.level, rationale=j.rationale or "", by=j.by, at=j.at)  # type: ignore[arg-type]
            for j in repository.judgements_of(session, incident_id)
        ]
        rescored = assess(
            case.incident, history, context.definition_set(case.row.area), judgements
        ).to_dict()
        gained = [
            c
            for c in HISTORY_CRITERIA
            if c in rescored["victim"]["marac"]["criteria"] and c not in stored
        ]
        if not gained:
            continue
        details = [
            f"{t['rule']}: {t['detail']}"
            for t in rescored["victim"]["triggers"]
            if t["rule"] in gained and t.get("fired")
        ]
        proposals = [
            dataclasses.replace(
                p,
                reason=_cut(
                    f"Pattern now meets {' and '.join(gained)} after late incident {row.id} "
                    f"(the stored assessment is unchanged): {'; '.join(details)}"
                ),
                because=(
                    *(Pointer.of("trigger", rule=c) for c in gained),
                    Pointer.of("late_incident", incident_id=str(row.id)),
                ),
            )
            for p in evaluate_flags(
                case.incident,
                rescored,
                context.rules(case.row.area),
                context.calendar,
                now_reference=now,
            )
            if p.type == "marac_referral"
        ]
        added += _add(session, case, proposals, principal_id, now, via=row.id)
    return added


@dataclass(frozen=True)
class _Case:
    row: models.Incident
    incident: Incident
    assessment_id: uuid.UUID
    result: dict[str, Any]
    flag_types: frozenset[str]


def _open_case(session: Session, incident_id: uuid.UUID) -> _Case | None:
    # Changes to an incident's flags take its lock first (app/flags/queue.py).
    lock_incident(session, incident_id)
    row = session.get(models.Incident, incident_id)
    body = repository.latest_submission_body(session, incident_id)
    latest = repository.latest_assessments(session, [incident_id]).get(incident_id)
    if row is None or row.erased_at is not None or body is None or latest is None:
        return None
    if latest.result is None:
        return None
    flags = repository.flags_of_incidents(session, [incident_id])[incident_id]
    return _Case(
        row=row,
        incident=Incident.model_validate(body),
        assessment_id=latest.id,
        result=latest.result,
        flag_types=frozenset(f.type for f in flags),
    )


def _add(
    session: Session,
    case: _Case,
    proposals: Sequence[FlagProposal],
    principal_id: str,
    now: dt.datetime,
    *,
    via: uuid.UUID,
) -> list[Flag]:
    keys = repository.flag_keys(session, case.row.id)
    person_of = {p.ref: p.person_id for p in case.row.persons}
    added = []
    for p in proposals:
        if p.dedupe_key in keys:
            continue
        flag = flag_from_proposal(
            p,
            incident_id=case.row.id,
            assessment_id=case.assessment_id,
            area=case.row.area,
            subject_person_id=person_of.get(p.subject_ref),
            now=now,
        )
        session.add(flag)
        session.add(
            FlagEvent(
                flag_id=flag.id,
                at=now,
                principal_id=principal_id,
                role=PATTERN_ACTOR_ROLE,
                change="created",
                from_value=None,
                to_value="open",
                note=f"raised by a pattern across incidents after incident {via}",
            )
        )
        keys.add(p.dedupe_key)
        added.append(flag)
    if added:
        refresh_queue_row(session, case.row.id)
    return added


def _audit(
    session: Session, row: models.Incident, added: list[Flag], principal_id: str, now: dt.datetime
) -> None:
    incident_ids = sorted({f.incident_id for f in added})
    person_ids = sorted(
        {p.person_id for p in repository.persons_of_incidents(session, incident_ids)}
    )
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    append(
        session,
        AuditEntry(
            principal_id=principal_id,
            role=PATTERN_ACTOR_ROLE,
            agency=None,
            operation="alter",
            record_type="incident",
            record_ids=incident_ids,
            person_ids=person_ids,
            request_id=request_id if isinstance(request_id, str) else None,
            digest=digest_of(
                [
                    {"id": str(f.id), "type": f.type, "incident_id": str(f.incident_id)}
                    for f in added
                ]
            ),
            detail={"pattern_flags_added": len(added), "after_incident": str(row.id)},
            occurred_at=now,
        ),
    )


def _cut(text: str) -> str:
    return text if len(text) <= REASON_MAX_CHARS else text[: REASON_MAX_CHARS - 1] + "…"
