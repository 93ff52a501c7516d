"""Persons for triage and auditors: who the person is, their chronology, merges.

A person is a survivor record and every record merged into it (a *cluster*); reading a
merged record shows that record's own part and where it was merged. Merges never rewrite
incident links or stored assessments: an unmerge restores exactly the links there were,
assessments made before a correction reproduce as they were, and new assessments count
the corrected clusters (app/people/history.py).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy.orm import Session

from app.assessments.models import Assessment
from app.auth.policy import area_filter
from app.auth.principal import Principal
from app.errors import Conflict, Gone, NotFound, Unprocessable
from app.flags.models import Flag
from app.incidents import models
from app.people import repository
from app.people.models import PersonMerge
from app.people.schemas import (
    DistinctVictim,
    MergeOut,
    PersonOut,
    RecordedName,
    Timeline,
    TimelineChild,
    TimelineEntry,
    TimelineFlag,
)

NOT_VISIBLE = "No person with this id is visible to you."


@dataclass(frozen=True)
class VisiblePerson:
    person: models.Person
    records: tuple[uuid.UUID, ...]  # the record and everything merged into it
    areas: frozenset[str] | None  # the caller's areas; None: every area


def visible_person(session: Session, principal: Principal, person_id: uuid.UUID) -> VisiblePerson:
    """The person if the caller may see it: in at least one incident of the caller's areas."""
    person = session.get(models.Person, person_id)
    if person is None:
        raise NotFound(NOT_VISIBLE)
    records = repository.cluster_of(session, person.id)
    areas = area_filter(principal)
    if not repository.in_areas(session, records, areas):
        raise NotFound(NOT_VISIBLE)
    if person.erased_at is not None:
        raise Gone("This person's identity was erased.")
    return VisiblePerson(person, records, areas)


def _in_scope(areas: frozenset[str] | None, area: str) -> bool:
    return areas is None or area in areas


def person_view(session: Session, visible: VisiblePerson) -> PersonOut:
    rows = repository.incident_persons_of(session, visible.records)
    live = [(p, i) for p, i in rows if i.erased_at is None]
    named = next(
        (
            p
            for p, i in live
            if _in_scope(visible.areas, i.area) and (p.given_name or p.family_name)
        ),
        None,
    )
    born = next((p for p, i in live if _in_scope(visible.areas, i.area) and p.date_of_birth), None)
    return PersonOut(
        id=str(visible.person.id),
        merged_into=_str(visible.person.merged_into_id),
        records=[str(r) for r in visible.records],
        roles=sorted({p.role for p, _ in rows}),
        incident_count=len({i.id for _, i in rows}),
        first_incident_at=min((i.occurred_at for _, i in rows), default=None),
        last_incident_at=max((i.occurred_at for _, i in rows), default=None),
        name=(
            None
            if named is None
            else RecordedName(given=named.given_name, family=named.family_name)
        ),
        date_of_birth=born.date_of_birth if born is not None else None,
        identifier_schemes=repository.identifier_schemes_of(session, visible.records),
        links=dict(sorted(Counter(p.link_rule or "unrecorded" for p, _ in rows).items())),
        merges=[merge_out(m) for m in repository.merges_touching(session, visible.records)],
    )


def timeline(session: Session, visible: VisiblePerson, *, limit: int) -> Timeline:
    """Every incident the person is in, newest first (the MASH "brief chronology")."""
    rows = repository.incident_persons_of(session, visible.records)
    visible_ids = [i.id for _, i in rows if _in_scope(visible.areas, i.area)]
    # Every incident's persons: a perpetrator's victims elsewhere are counted (by id only).
    others = repository.persons_by_incident(session, {i.id for _, i in rows})
    survivor = repository.survivors(session, {p.person_id for ps in others.values() for p in ps})
    latest = repository.latest_assessments(session, visible_ids)
    flags = repository.flags_of_incidents(session, visible_ids)

    entries: list[TimelineEntry] = []
    victims: dict[uuid.UUID, list[tuple[dt.datetime, uuid.UUID | None]]] = {}
    for p, incident in rows:
        in_scope = _in_scope(visible.areas, incident.area)
        people = others.get(incident.id, [])
        victim = next((survivor[x.person_id] for x in people if x.role == "victim"), None)
        if p.role == "perpetrator" and victim is not None and incident.erased_at is None:
            victims.setdefault(victim, []).append(
                (incident.occurred_at, incident.id if in_scope else None)
            )
        if not in_scope:
            entries.append(
                TimelineEntry(
                    in_scope=False,
                    incident_id=None,
                    occurred_at=incident.occurred_at,
                    area=incident.area,
                    role=p.role,
                )
            )
            continue
        entries.append(_entry(p, incident, people, survivor, latest.get(incident.id), flags))

    distinct = [
        DistinctVictim(
            person_id=str(v),
            incident_ids=[str(i) for _, i in sorted(seen, key=_when) if i is not None],
            other_incidents=sum(1 for _, i in seen if i is None),
            first_incident_at=min(at for at, _ in seen),
            last_incident_at=max(at for at, _ in seen),
        )
        for v, seen in sorted(victims.items(), key=lambda kv: (min(a for a, _ in kv[1]), kv[0]))
    ]
    return Timeline(
        person_id=str(visible.person.id),
        entries=entries[:limit],
        distinct_victims=distinct,
        truncated=len(entries) > limit,
    )


def _when(seen: tuple[dt.datetime, uuid.UUID | None]) -> dt.datetime:
    return seen[0]


def _entry(
    p: models.IncidentPerson,
    incident: models.Incident,
    people: Sequence[models.IncidentPerson],
    survivor: dict[uuid.UUID, uuid.UUID],
    assessment: Assessment | None,
    flags: dict[uuid.UUID, list[Flag]],
) -> TimelineEntry:
    result = (assessment.result if assessment is not None else None) or {}
    criteria = result.get("victim", {}).get("marac", {}).get("criteria", [])
    child_levels = {c["person_ref"]: c.get("level") for c in result.get("children", [])}
    role_person = {x.role: survivor.get(x.person_id) for x in people}
    return TimelineEntry(
        in_scope=True,
        incident_id=str(incident.id),
        occurred_at=incident.occurred_at,
        area=incident.area,
        role=p.role,
        person_ref=p.ref,
        record_id=str(p.person_id),
        link_rule=p.link_rule,
        erased=incident.erased_at is not None,
        assessment_id=_str(assessment.id if assessment is not None else None),
        assessment_version=assessment.version if assessment is not None else None,
        victim_person_id=_str(role_person.get("victim")),
        perpetrator_person_id=_str(role_person.get("perpetrator")),
        # Levels stay after erasure (columns); criteria and children go with the result.
        victim_level=assessment.victim_level if assessment is not None else None,
        marac_refer=assessment.marac_refer if assessment is not None else None,
        marac_criteria=list(criteria),
        perpetrator_serial=(result.get("perpetrator") or {}).get("serial"),
        children=[
            TimelineChild(
                person_ref=x.ref,
                person_id=str(survivor.get(x.person_id, x.person_id)),
                level=child_levels.get(x.ref),
            )
            for x in people
            if x.role == "child"
        ],
        flags=[
            TimelineFlag(
                id=str(f.id),
                type=f.type,
                agency=f.agency,
                subject_ref=f.subject_ref,
                status=f.status,
                priority=f.priority,
                due_at=f.due_at,
                needs_review=f.needs_review,
            )
            for f in flags.get(incident.id, [])
        ],
    )


def _str(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def merge_out(merge: PersonMerge) -> MergeOut:
    return MergeOut(
        id=str(merge.id),
        person_id=str(merge.person_id),
        into_id=str(merge.into_id),
        requested_into_id=str(merge.requested_into_id),
        kind=merge.kind,  # type: ignore[arg-type]
        reason=merge.reason,
        merged_by=merge.merged_by,
        merged_at=merge.merged_at,
        undone_at=merge.undone_at,
        undone_by=merge.undone_by,
        undo_reason=merge.undo_reason,
    )


# --------------------------------------------------------------------------- corrections


@dataclass(frozen=True)
class MergeResult:
    merge: PersonMerge
    created: bool
    person_ids: tuple[uuid.UUID, ...]  # every record of both persons


def merge(
    session: Session,
    principal: Principal,
    *,
    person_id: uuid.UUID,
    into: uuid.UUID,
    reason: str,
    now: dt.datetime,
) -> MergeResult:
    """Merge ``person_id`` (with whatever was merged into it) into the survivor of ``into``."""
    if person_id == into:
        raise Unprocessable(
            "A person cannot be merged into itself.",
            errors=[{"loc": ["body", "into"], "msg": "same as the person"}],
        )
    _lock_merges(session)
    source = visible_person(session, principal, person_id)
    target = visible_person(session, principal, into)
    survivor = repository.survivor_of(session, into)
    if source.person.merged_into_id is not None:
        current = repository.current_merge(session, person_id)
        if source.person.merged_into_id == survivor and current is not None:
            return MergeResult(current, False, (*source.records, *target.records))
        raise Conflict(
            "This record is already merged into another person; unmerge it first.",
            merged_into=str(source.person.merged_into_id),
        )
    if survivor in source.records:
        raise Conflict("These records are already one person.")
    survivor_person = session.get(models.Person, survivor)
    if survivor_person is None or survivor_person.erased_at is not None:
        raise Gone("The person to merge into was erased.")
    record = PersonMerge(
        person_id=person_id,
        into_id=survivor,
        requested_into_id=into,
        kind="manual",
        reason=reason,
        merged_by=principal.id,
        merged_at=now,
    )
    source.person.merged_into_id = survivor
    session.add(record)
    session.flush()
    return MergeResult(record, True, (*source.records, *target.records))


def unmerge(
    session: Session,
    principal: Principal,
    *,
    person_id: uuid.UUID,
    reason: str,
    now: dt.datetime,
) -> MergeResult:
    """Undo the merge of ``person_id``: it and whatever was merged into it stand apart again."""
    _lock_merges(session)
    source = visible_person(session, principal, person_id)
    current = repository.current_merge(session, person_id)
    if source.person.merged_into_id is None or current is None:
        raise Conflict("This record is not merged into another person.")
    survivor = repository.survivor_of(session, person_id)
    everyone = repository.cluster_of(session, survivor)
    current.undone_at = now
    current.undone_by = principal.id
    current.undo_reason = reason
    source.person.merged_into_id = None
    session.flush()
    return MergeResult(current, True, everyone)


def _lock_merges(session: Session) -> None:
    """One merge or unmerge at a time, reading the merges as the one before left them.

    Two merges racing could otherwise join records both ways round (a cycle). Merges are
    rare, so one PostgreSQL advisory lock for all of them is enough; SQLite serialises
    writers already. Records are re-read under the lock.
    """
    session.flush()
    repository.lock_link_keys(session, ["merges"])
    session.expire_all()
