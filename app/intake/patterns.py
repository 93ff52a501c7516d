"""Patterns across incidents: the flags one incident's assessment cannot raise by itself.

An assessment counts only the history before its incident (order independence), and it
is never rewritten. Two patterns reach further, and add flags to *open cases* (live
incidents with a flag still being worked) without touching any stored assessment:

* **Serial perpetrator across families** (docs/domain.md: abuse of two or more unconnected
  victims; "the perpetrator moves on to a new family and repeats the pattern"). Once the
  stored incidents link a perpetrator to two or more distinct victims, each open case of
  each of those victims gets the ``serial_perpetrator`` flag, with the perpetrator as
  subject, so the earlier family is not forgotten (its children are in that case, and the
  flag reaches whoever works it). The incident being assessed gets it too when its own
  assessment could not count the other victim because that incident occurred later
  (``pattern_proposals``).
* **Late arrivals** (MARAC routes 3 and 4). When an incident arrives with an earlier
  ``occurred_at`` than stored ones, each open later incident of the same victim is scored
  again in memory against the history as it now stands; if that meets
  ``potential_escalation`` or ``repeat_marac`` and its stored assessment did not, the case
  gets the ``marac_referral`` flag, whose reason names the late incident. The stored
  assessment stays as it was; a judgement or revision re-scores it with the fuller history.

Flags come from the area's versioned flag rules (the same rule, priority, agency and due
policy, due from the moment the pattern became known), keyed by the rules' own dedupe key,
so a flag already there in any status is never added again, and a later assessment of that
incident that proposes the same flag finds it there. Each addition is kept in the flag's
history and in the audit log (``alter`` of the incidents changed).

Both patterns are read from the same participations as the incident's history
(``StoredRecords``): when the perpetrator has one victim and the victim no later incident,
nothing more is read.
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

from app.audit.chain import AuditEntry, digest_of
from app.contract.incident import Incident, stored_incident
from app.flags import repository as flag_repository
from app.flags.engine import FlagProposal, Pointer, evaluate_flags
from app.flags.queue import refresh_queue_row
from app.flags.store import (
    NewFlag,
    child_school_urns,
    flag_event_row,
    flag_from_proposal,
    flag_rows,
)
from app.incidents import repository as incident_repository
from app.intake.context import ScoringContext
from app.notify.outbox import enqueue
from app.people import repository as people_repository
from app.people.history import StoredRecords, stored_history, stored_records
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


def serial_pattern(stored: StoredRecords) -> SerialPattern | None:
    """The perpetrator's victims across every live stored incident, if two or more."""
    victims = stored.perpetrator_victims()
    if len(victims) < 2:
        return None
    return SerialPattern(stored.perpetrator, {v: tuple(sorted(ids)) for v, ids in victims.items()})


# --------------------------------------------------------------------------- this incident


def pattern_proposals(
    context: ScoringContext,
    *,
    incident: Incident,
    area: str,
    result: dict[str, Any],
    proposals: Sequence[FlagProposal],
    stored: StoredRecords,
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
    pattern = serial_pattern(stored)
    if pattern is None:
        return []
    proposal = _serial_proposal(
        incident,
        result,
        context,
        area,
        flag_base_time,
        pattern,
        pattern.other_incidents(stored.victim),
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


def reaches_other_cases(stored: StoredRecords) -> bool:
    """Whether a pattern could add flags to other cases (else nothing more is read)."""
    return serial_pattern(stored) is not None or bool(stored.later_victim_incidents())


def propagate(
    session: Session,
    context: ScoringContext,
    *,
    stored: StoredRecords,
    principal_id: str,
    now: dt.datetime,
) -> AuditEntry | None:
    """Add pattern flags to other open cases after this incident's assessment is written.

    Returns the audit event for the cases changed (``alter`` by the system), or None.
    """
    if not reaches_other_cases(stored):
        return None
    added: list[NewFlag] = []
    pattern = serial_pattern(stored)
    if pattern is not None:
        added += _propagate_serial(session, context, stored, pattern, principal_id, now)
    added += _propagate_late(session, context, stored, principal_id, now)
    if not added:
        return None
    return _audit(session, stored.incident_id, added, principal_id, now)


def _propagate_serial(
    session: Session,
    context: ScoringContext,
    stored: StoredRecords,
    pattern: SerialPattern,
    principal_id: str,
    now: dt.datetime,
) -> list[NewFlag]:
    candidates = [i for i in pattern.other_incidents(stored.victim) if i != stored.incident_id]
    added = []
    for incident_id in sorted(people_repository.open_incidents(session, candidates)):
        case = _open_case(session, incident_id)
        if case is None or "serial_perpetrator" in case.flag_types:
            continue
        proposal = _serial_proposal(
            case.incident,
            case.result,
            context,
            case.area,
            now,
            pattern,
            pattern.other_incidents(case.stored.victim),
        )
        if proposal is not None:
            added += _add(session, case, [proposal], principal_id, now, via=stored.incident_id)
    return added


def _propagate_late(
    session: Session,
    context: ScoringContext,
    stored: StoredRecords,
    principal_id: str,
    now: dt.datetime,
) -> list[NewFlag]:
    later = stored.later_victim_incidents()
    added = []
    for incident_id in sorted(people_repository.open_incidents(session, later)):
        case = _open_case(session, incident_id)
        if case is None or "marac_referral" in case.flag_types:
            continue
        criteria_before = set(case.result["victim"]["marac"]["criteria"])
        # The pure engine, on the case as stored and the history as it stands now.
        history = stored_history(session, case.stored, History.reported(case.incident))
        judgements = [
            Judgement(level=j.level, rationale=j.rationale or "", by=j.by, at=j.at)  # type: ignore[arg-type]
            for j in people_repository.judgements_of(session, incident_id)
        ]
        rescored = assess(
            case.incident, history, context.definition_set(case.area), judgements
        ).to_dict()
        gained = [
            c
            for c in HISTORY_CRITERIA
            if c in rescored["victim"]["marac"]["criteria"] and c not in criteria_before
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
                    f"Pattern now meets {' and '.join(gained)} after late incident "
                    f"{stored.incident_id} (the stored assessment is unchanged): "
                    f"{'; '.join(details)}"
                ),
                because=(
                    *(Pointer.of("trigger", rule=c) for c in gained),
                    Pointer.of("late_incident", incident_id=str(stored.incident_id)),
                ),
            )
            for p in evaluate_flags(
                case.incident,
                rescored,
                context.rules(case.area),
                context.calendar,
                now_reference=now,
            )
            if p.type == "marac_referral"
        ]
        added += _add(session, case, proposals, principal_id, now, via=stored.incident_id)
    return added


@dataclass(frozen=True)
class _Case:
    incident_id: uuid.UUID
    area: str
    incident: Incident
    assessment_id: uuid.UUID
    result: dict[str, Any]
    flag_types: frozenset[str]
    records: dict[str, uuid.UUID]  # person ref → record
    stored: StoredRecords


def _open_case(session: Session, incident_id: uuid.UUID) -> _Case | None:
    # Changes to an incident's flags take its lock first (app/flags/queue.py).
    incident_repository.lock_incident(session, incident_id)
    row = incident_repository.get(session, incident_id)
    body = people_repository.latest_submission_body(session, incident_id)
    latest = people_repository.latest_assessments(session, [incident_id]).get(incident_id)
    if row is None or row.erased_at is not None or body is None or latest is None:
        return None
    if latest.result is None:
        return None
    flags = flag_repository.flags_of_incident(session, incident_id)
    incident = stored_incident(body)
    records = {p.ref: p.person_id for p in row.persons}
    graph = people_repository.merge_graph(session, set(records.values()))
    return _Case(
        incident_id=incident_id,
        area=row.area,
        incident=incident,
        assessment_id=latest.id,
        result=latest.result,
        flag_types=frozenset(f.type for f in flags),
        records=records,
        stored=stored_records(
            session,
            incident,
            records,
            graph,
            incident_id=incident_id,
            occurred_at=row.occurred_at,
        ),
    )


def _add(
    session: Session,
    case: _Case,
    proposals: Sequence[FlagProposal],
    principal_id: str,
    now: dt.datetime,
    *,
    via: uuid.UUID,
) -> list[NewFlag]:
    keys = flag_repository.dedupe_keys(session, case.incident_id)
    schools = child_school_urns(case.incident)
    added: list[NewFlag] = []
    for p in proposals:
        if p.dedupe_key in keys:
            continue
        added.append(
            flag_from_proposal(
                p,
                incident_id=case.incident_id,
                assessment_id=case.assessment_id,
                area=case.area,
                subject_person_id=case.records.get(p.subject_ref),
                school_urn=schools.get(p.subject_ref) if p.subject_kind == "child" else None,
                now=now,
            )
        )
        keys.add(p.dedupe_key)
    if added:
        flag_repository.insert_flags(
            session,
            flag_rows(added),
            [
                flag_event_row(
                    f,
                    principal_id=principal_id,
                    role=PATTERN_ACTOR_ROLE,
                    change="created",
                    from_value=None,
                    to_value="open",
                    at=now,
                    note=f"raised by a pattern across incidents after incident {via}",
                )
                for f in added
            ],
        )
        enqueue(session, added, "raised", now)
        refresh_queue_row(session, case.incident_id)
    return added


def _audit(
    session: Session,
    incident_id: uuid.UUID,
    added: list[NewFlag],
    principal_id: str,
    now: dt.datetime,
) -> AuditEntry:
    incident_ids = sorted({f.incident_id for f in added})
    person_ids = sorted(
        {p.person_id for p in people_repository.persons_of_incidents(session, incident_ids)}
    )
    request_id = structlog.contextvars.get_contextvars().get("request_id")
    return AuditEntry(
        principal_id=principal_id,
        role=PATTERN_ACTOR_ROLE,
        agency=None,
        operation="alter",
        record_type="incident",
        record_ids=incident_ids,
        person_ids=person_ids,
        request_id=request_id if isinstance(request_id, str) else None,
        digest=digest_of(
            [{"id": str(f.id), "type": f.type, "incident_id": str(f.incident_id)} for f in added]
        ),
        detail={"pattern_flags_added": len(added), "after_incident": str(incident_id)},
        occurred_at=now,
    )


def _cut(text: str) -> str:
    return text if len(text) <= REASON_MAX_CHARS else text[: REASON_MAX_CHARS - 1] + "…"
