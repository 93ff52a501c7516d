"""All SQL for persons across incidents: identifiers, match keys, merges, clusters.

A *cluster* is a survivor record and every record merged into it, directly or through
earlier merges. Incident links are never rewritten by a merge, so every reader that asks
"which incidents is this person in" asks it of the cluster.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session, aliased

from app.assessments.models import Assessment
from app.assessments.models import Judgement as JudgementRow
from app.flags.models import OPEN_STATUSES, Flag
from app.incidents import models
from app.people.models import PersonMatchKey, PersonMerge

# Merge chains are short (a merge always targets a survivor); this only stops a corrupt
# cycle from looping for ever.
MAX_MERGE_DEPTH = 64
LOCK_NAMESPACE = b"da-triage:person-link:"


# --------------------------------------------------------------------------- locking


def lock_link_keys(session: Session, keys: Iterable[str]) -> None:
    """Serialise intakes that could create or match the same person (PostgreSQL).

    Transaction-scoped advisory locks, one per identifier or match key, taken in sorted
    order so two intakes never wait on each other in a cycle. SQLite needs none: every
    transaction there starts with ``BEGIN IMMEDIATE`` (app/db.py) and holds the write lock.
    """
    if session.get_bind().dialect.name != "postgresql":
        return
    for lock_id in sorted({_lock_id(k) for k in keys}):
        session.execute(select(func.pg_advisory_xact_lock(lock_id)))


def _lock_id(key: str) -> int:
    digest = hashlib.sha256(LOCK_NAMESPACE + key.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# --------------------------------------------------------------------------- lookups


def identifier_holders(
    session: Session, pairs: Collection[tuple[str, str]]
) -> dict[tuple[str, str], uuid.UUID]:
    """The live record holding each (scheme, value); at most one (a unique constraint)."""
    if not pairs:
        return {}
    ident = models.PersonIdentifier
    rows = session.execute(
        select(ident.scheme, ident.value, ident.person_id)
        .join(models.Person, models.Person.id == ident.person_id)
        .where(
            or_(*(and_(ident.scheme == s, ident.value == v) for s, v in sorted(pairs))),
            models.Person.erased_at.is_(None),
        )
    )
    return {(scheme, value): person_id for scheme, value, person_id in rows}


def key_holders(session: Session, digests: Collection[str]) -> dict[str, set[uuid.UUID]]:
    """The live records holding each name-and-date-of-birth key."""
    found: dict[str, set[uuid.UUID]] = {d: set() for d in digests}
    if not digests:
        return found
    rows = session.execute(
        select(PersonMatchKey.key_sha256, PersonMatchKey.person_id)
        .join(models.Person, models.Person.id == PersonMatchKey.person_id)
        .where(PersonMatchKey.key_sha256.in_(sorted(digests)), models.Person.erased_at.is_(None))
    )
    for digest, person_id in rows:
        found[digest].add(person_id)
    return found


def holds_key(session: Session, person_id: uuid.UUID, digest: str) -> bool:
    return (
        session.scalar(
            select(PersonMatchKey.id).where(
                PersonMatchKey.person_id == person_id, PersonMatchKey.key_sha256 == digest
            )
        )
        is not None
    )


def identifiers_of(session: Session, person_ids: Collection[uuid.UUID]) -> list[tuple[str, str]]:
    ident = models.PersonIdentifier
    return [
        (scheme, value)
        for scheme, value in session.execute(
            select(ident.scheme, ident.value)
            .where(ident.person_id.in_(sorted(person_ids)))
            .order_by(ident.scheme, ident.value)
        )
    ]


def identifier_schemes_of(session: Session, person_ids: Collection[uuid.UUID]) -> list[str]:
    ident = models.PersonIdentifier
    return sorted(
        set(session.scalars(select(ident.scheme).where(ident.person_id.in_(sorted(person_ids)))))
    )


# --------------------------------------------------------------------------- merges


def survivors(session: Session, person_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, uuid.UUID]:
    """Each record's survivor: itself unless merged, else the end of its merge chain."""
    wanted = set(person_ids)
    parent: dict[uuid.UUID, uuid.UUID | None] = {}
    frontier = set(wanted)
    for _ in range(MAX_MERGE_DEPTH):
        if not frontier:
            break
        rows = session.execute(
            select(models.Person.id, models.Person.merged_into_id).where(
                models.Person.id.in_(sorted(frontier))
            )
        )
        for person_id, merged_into in rows:
            parent[person_id] = merged_into
        frontier = {p for p in parent.values() if p is not None and p not in parent}
    out: dict[uuid.UUID, uuid.UUID] = {}
    for person_id in wanted:
        current = person_id
        for _ in range(MAX_MERGE_DEPTH):
            nxt = parent.get(current)
            if nxt is None:
                break
            current = nxt
        out[person_id] = current
    return out


def survivor_of(session: Session, person_id: uuid.UUID) -> uuid.UUID:
    return survivors(session, [person_id])[person_id]


def clusters(
    session: Session, roots: Iterable[uuid.UUID]
) -> dict[uuid.UUID, tuple[uuid.UUID, ...]]:
    """Each root with every record merged into it (directly or through other merges)."""
    members: dict[uuid.UUID, list[uuid.UUID]] = {r: [r] for r in roots}
    root_of = {r: r for r in members}
    frontier = set(members)
    for _ in range(MAX_MERGE_DEPTH):
        if not frontier:
            break
        rows = list(
            session.execute(
                select(models.Person.id, models.Person.merged_into_id).where(
                    models.Person.merged_into_id.in_(sorted(frontier))
                )
            )
        )
        frontier = set()
        for person_id, parent in rows:
            if person_id in root_of or parent is None:
                continue
            root_of[person_id] = root_of[parent]
            members[root_of[parent]].append(person_id)
            frontier.add(person_id)
    return {r: tuple(sorted(ids)) for r, ids in members.items()}


def cluster_of(session: Session, root: uuid.UUID) -> tuple[uuid.UUID, ...]:
    return clusters(session, [root])[root]


def merges_touching(session: Session, person_ids: Collection[uuid.UUID]) -> list[PersonMerge]:
    return list(
        session.scalars(
            select(PersonMerge)
            .where(
                or_(
                    PersonMerge.person_id.in_(sorted(person_ids)),
                    PersonMerge.into_id.in_(sorted(person_ids)),
                )
            )
            .order_by(PersonMerge.merged_at, PersonMerge.id)
        )
    )


def current_merge(session: Session, person_id: uuid.UUID) -> PersonMerge | None:
    """The merge that put ``person_id`` where it is now, if it is merged."""
    return session.scalar(
        select(PersonMerge)
        .where(PersonMerge.person_id == person_id, PersonMerge.undone_at.is_(None))
        .order_by(PersonMerge.merged_at.desc())
        .limit(1)
    )


# --------------------------------------------------------------------------- incidents


def incidents_in_role(
    session: Session,
    person_ids: Collection[uuid.UUID],
    role: str,
    *,
    before: dt.datetime | None = None,
    after: dt.datetime | None = None,
    exclude: uuid.UUID | None = None,
) -> list[tuple[uuid.UUID, dt.datetime]]:
    """Live incidents in which any of these records has ``role`` (ordered by time)."""
    ip = models.IncidentPerson
    query = (
        select(models.Incident.id, models.Incident.occurred_at)
        .join(ip, ip.incident_id == models.Incident.id)
        .where(
            ip.person_id.in_(sorted(person_ids)),
            ip.role == role,
            models.Incident.erased_at.is_(None),
        )
        .distinct()
        .order_by(models.Incident.occurred_at, models.Incident.id)
    )
    if before is not None:
        query = query.where(models.Incident.occurred_at < before)
    if after is not None:
        query = query.where(models.Incident.occurred_at > after)
    if exclude is not None:
        query = query.where(models.Incident.id != exclude)
    return [(i, at) for i, at in session.execute(query)]


def incidents_with_victims(
    session: Session,
    perpetrator_ids: Collection[uuid.UUID],
    *,
    before: dt.datetime | None = None,
    exclude: uuid.UUID | None = None,
) -> list[tuple[uuid.UUID, dt.datetime, uuid.UUID]]:
    """(incident, occurred_at, victim record) of each live incident of this perpetrator."""
    perpetrator = aliased(models.IncidentPerson)
    victim = aliased(models.IncidentPerson)
    query = (
        select(models.Incident.id, models.Incident.occurred_at, victim.person_id)
        .join(perpetrator, perpetrator.incident_id == models.Incident.id)
        .join(
            victim,
            and_(victim.incident_id == models.Incident.id, victim.role == "victim"),
        )
        .where(
            perpetrator.person_id.in_(sorted(perpetrator_ids)),
            perpetrator.role == "perpetrator",
            models.Incident.erased_at.is_(None),
        )
        .order_by(models.Incident.occurred_at, models.Incident.id)
    )
    if before is not None:
        query = query.where(models.Incident.occurred_at < before)
    if exclude is not None:
        query = query.where(models.Incident.id != exclude)
    return [(i, at, v) for i, at, v in session.execute(query)]


def child_incidents(
    session: Session,
    child_ids: Collection[uuid.UUID],
    *,
    before: dt.datetime,
    exclude: uuid.UUID,
) -> list[tuple[uuid.UUID, uuid.UUID]]:
    """(child record, incident) for each earlier live incident recording these children."""
    ip = models.IncidentPerson
    return [
        (person_id, incident_id)
        for person_id, incident_id in session.execute(
            select(ip.person_id, models.Incident.id)
            .join(models.Incident, models.Incident.id == ip.incident_id)
            .where(
                ip.person_id.in_(sorted(child_ids)),
                ip.role == "child",
                models.Incident.erased_at.is_(None),
                models.Incident.occurred_at < before,
                models.Incident.id != exclude,
            )
        )
    ]


def last_marac_referral(
    session: Session, incident_ids: Collection[uuid.UUID]
) -> tuple[uuid.UUID, dt.datetime] | None:
    """The latest of these incidents whose assessment referred the victim to MARAC."""
    if not incident_ids:
        return None
    found = session.execute(
        select(models.Incident.id, models.Incident.occurred_at)
        .join(Assessment, Assessment.incident_id == models.Incident.id)
        .where(models.Incident.id.in_(sorted(incident_ids)), Assessment.marac_refer.is_(True))
        .order_by(models.Incident.occurred_at.desc(), models.Incident.id.desc())
        .limit(1)
    ).first()
    return None if found is None else (found[0], found[1])


def incident_persons_of(
    session: Session, person_ids: Collection[uuid.UUID]
) -> list[tuple[models.IncidentPerson, models.Incident]]:
    """Every incident row of these records, newest incident first."""
    ip = models.IncidentPerson
    return [
        (p, i)
        for p, i in session.execute(
            select(ip, models.Incident)
            .join(models.Incident, models.Incident.id == ip.incident_id)
            .where(ip.person_id.in_(sorted(person_ids)))
            .order_by(models.Incident.occurred_at.desc(), models.Incident.id.desc(), ip.position)
        )
    ]


def persons_of_incidents(
    session: Session, incident_ids: Collection[uuid.UUID]
) -> list[models.IncidentPerson]:
    ip = models.IncidentPerson
    return list(
        session.scalars(
            select(ip).where(ip.incident_id.in_(sorted(incident_ids))).order_by(ip.position)
        )
    )


def latest_assessments(
    session: Session, incident_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, Assessment]:
    """The newest assessment version of each incident."""
    if not incident_ids:
        return {}
    newest = (
        select(Assessment.incident_id, func.max(Assessment.version).label("version"))
        .where(Assessment.incident_id.in_(sorted(incident_ids)))
        .group_by(Assessment.incident_id)
        .subquery()
    )
    rows = session.scalars(
        select(Assessment).join(
            newest,
            and_(
                Assessment.incident_id == newest.c.incident_id,
                Assessment.version == newest.c.version,
            ),
        )
    )
    return {a.incident_id: a for a in rows}


def flags_of_incidents(
    session: Session, incident_ids: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[Flag]]:
    out: dict[uuid.UUID, list[Flag]] = {i: [] for i in incident_ids}
    if not incident_ids:
        return out
    for flag in session.scalars(
        select(Flag)
        .where(Flag.incident_id.in_(sorted(incident_ids)))
        .order_by(Flag.priority, Flag.due_at, Flag.type, Flag.subject_ref)
    ):
        out[flag.incident_id].append(flag)
    return out


def open_incidents(session: Session, incident_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these incidents that are open cases: live, with a flag still being worked."""
    if not incident_ids:
        return set()
    return set(
        session.scalars(
            select(Flag.incident_id)
            .join(models.Incident, models.Incident.id == Flag.incident_id)
            .where(
                Flag.incident_id.in_(sorted(incident_ids)),
                Flag.status.in_(OPEN_STATUSES),
                models.Incident.erased_at.is_(None),
            )
            .distinct()
        )
    )


def flag_keys(session: Session, incident_id: uuid.UUID) -> set[str]:
    return set(session.scalars(select(Flag.dedupe_key).where(Flag.incident_id == incident_id)))


def judgements_of(session: Session, incident_id: uuid.UUID) -> list[JudgementRow]:
    return list(
        session.scalars(
            select(JudgementRow)
            .where(JudgementRow.incident_id == incident_id)
            .order_by(JudgementRow.at)
        )
    )


def latest_submission_body(session: Session, incident_id: uuid.UUID) -> dict[str, Any] | None:
    sub = models.IncidentSubmission
    return session.scalar(
        select(sub.body)
        .where(sub.incident_id == incident_id)
        .order_by(sub.revision.desc())
        .limit(1)
    )


def in_areas(
    session: Session, person_ids: Collection[uuid.UUID], areas: Collection[str] | None
) -> bool:
    """Whether any of these records is in an incident of one of ``areas`` (None: any)."""
    ip = models.IncidentPerson
    query = (
        select(ip.id)
        .join(models.Incident, models.Incident.id == ip.incident_id)
        .where(ip.person_id.in_(sorted(person_ids)))
        .limit(1)
    )
    if areas is not None:
        query = query.where(models.Incident.area.in_(sorted(areas)))
    return session.scalar(query) is not None


def persons_by_incident(
    session: Session, incident_ids: Collection[uuid.UUID]
) -> Mapping[uuid.UUID, Sequence[models.IncidentPerson]]:
    by_incident: dict[uuid.UUID, list[models.IncidentPerson]] = {}
    for p in persons_of_incidents(session, incident_ids):
        by_incident.setdefault(p.incident_id, []).append(p)
    return by_incident
