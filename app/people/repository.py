"""All SQL for persons across incidents: identifiers, match keys, merges, clusters.

A *cluster* is a survivor record and every record merged into it, directly or through
earlier merges. Incident links are never rewritten by a merge, so every reader that asks
"which incidents is this person in" asks it of the cluster.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import and_, bindparam, case, func, literal_column, or_, select, tuple_, union_all
from sqlalchemy.orm import Session, aliased

from app.assessments.models import Assessment
from app.assessments.models import Judgement as JudgementRow
from app.db import insert_rows, lock_keys, table_of
from app.flags.models import OPEN_STATUSES, Flag
from app.incidents import models
from app.people.models import PersonMatchKey, PersonMerge

# Merge chains are short (a merge always targets a survivor); this only stops a corrupt
# cycle from looping for ever.
MAX_MERGE_DEPTH = 64
# Person-link lock names ("person-link:id:pnc:…", "person-link:key:…", "person-link:merges").
LINK_LOCK_PREFIX = "person-link:"


# --------------------------------------------------------------------------- locking


def lock_link_keys(session: Session, keys: Iterable[str]) -> None:
    """Serialise intakes that could create or match the same person (PostgreSQL).

    Transaction-scoped advisory locks, one per identifier or match key, taken in sorted
    order so two intakes never wait on each other in a cycle (``app.db.lock_keys``).
    SQLite needs none: a writing unit holds the database's write lock (app/db.py).
    """
    lock_keys(session, [LINK_LOCK_PREFIX + k for k in keys])


# --------------------------------------------------------------------------- lookups


_IDENTIFIERS = table_of(models.PersonIdentifier)
_MATCH_KEYS = table_of(PersonMatchKey)
_PERSONS = table_of(models.Person)
# Built once: the holders of every identifier and every name key of an incident, at once.
_HOLDERS = union_all(
    select(
        literal_column("'id'").label("kind"),
        _IDENTIFIERS.c.scheme,
        _IDENTIFIERS.c.value,
        _IDENTIFIERS.c.person_id,
    )
    .join(_PERSONS, _PERSONS.c.id == _IDENTIFIERS.c.person_id)
    .where(
        tuple_(_IDENTIFIERS.c.scheme, _IDENTIFIERS.c.value).in_(bindparam("pairs", expanding=True)),
        _PERSONS.c.erased_at.is_(None),
    ),
    select(
        literal_column("'key'"),
        literal_column("''"),
        _MATCH_KEYS.c.key_sha256,
        _MATCH_KEYS.c.person_id,
    )
    .join(_PERSONS, _PERSONS.c.id == _MATCH_KEYS.c.person_id)
    .where(
        _MATCH_KEYS.c.key_sha256.in_(bindparam("digests", expanding=True)),
        _PERSONS.c.erased_at.is_(None),
    ),
)


def link_candidates(
    session: Session, pairs: Collection[tuple[str, str]], digests: Collection[str]
) -> tuple[dict[tuple[str, str], uuid.UUID], dict[str, set[uuid.UUID]]]:
    """The live holder of each identifier and the live holders of each match key, at once."""
    holders: dict[tuple[str, str], uuid.UUID] = {}
    key_holders: dict[str, set[uuid.UUID]] = {d: set() for d in digests}
    if not pairs and not digests:
        return holders, key_holders
    rows = session.connection().execute(
        _HOLDERS, {"pairs": sorted(pairs), "digests": sorted(digests)}
    )
    for kind, scheme, value, person_id in rows:
        if kind == "id":
            holders[(scheme, value)] = person_id
        else:
            key_holders[value].add(person_id)
    return holders, key_holders


@dataclass(frozen=True)
class MergeGraph:
    """Records, each with the survivor it counts as: whole merge clusters, never part of one."""

    survivor: Mapping[uuid.UUID, uuid.UUID]

    @property
    def records(self) -> frozenset[uuid.UUID]:
        return frozenset(self.survivor)

    def survivor_of(self, record: uuid.UUID) -> uuid.UUID:
        return self.survivor.get(record, record)

    def cluster(self, root: uuid.UUID) -> tuple[uuid.UUID, ...]:
        """``root`` and every record merged into it (sorted)."""
        return tuple(sorted({r for r, s in self.survivor.items() if s == root} | {root}))

    def with_records(self, survivor: Mapping[uuid.UUID, uuid.UUID]) -> MergeGraph:
        return MergeGraph({**self.survivor, **survivor})


EMPTY_GRAPH = MergeGraph({})


def merge_graph(session: Session, records: Collection[uuid.UUID]) -> MergeGraph:
    """Every record merged with any of ``records`` (up to survivors and down to what was
    merged into them), in one recursive query; no query when ``records`` is empty."""
    if not records:
        return EMPTY_GRAPH
    p = table_of(models.Person)
    seed = select(p.c.id).where(p.c.id.in_(sorted(records))).cte("component", recursive=True)
    step = select(case((p.c.merged_into_id == seed.c.id, p.c.id), else_=p.c.merged_into_id)).where(
        or_(
            p.c.merged_into_id == seed.c.id,
            and_(p.c.id == seed.c.id, p.c.merged_into_id.is_not(None)),
        )
    )
    component = seed.union(step)
    parent: dict[uuid.UUID, uuid.UUID | None] = dict(
        session.execute(
            select(p.c.id, p.c.merged_into_id).where(p.c.id.in_(select(component.c.id)))
        ).all()
    )
    survivor = {}
    for record in parent:
        current = record
        for _ in range(MAX_MERGE_DEPTH):
            nxt = parent.get(current)
            if nxt is None:
                break
            current = nxt
        survivor[record] = current
    return MergeGraph(survivor)


def identifiers_by_record(
    session: Session, records: Collection[uuid.UUID]
) -> dict[uuid.UUID, list[tuple[str, str]]]:
    ident = models.PersonIdentifier
    out: dict[uuid.UUID, list[tuple[str, str]]] = {}
    for person_id, scheme, value in session.execute(
        select(ident.person_id, ident.scheme, ident.value).where(
            ident.person_id.in_(sorted(records))
        )
    ):
        out.setdefault(person_id, []).append((scheme, value))
    return out


@dataclass(frozen=True)
class Participation:
    """One person record's part in one live stored incident."""

    incident_id: uuid.UUID
    occurred_at: dt.datetime
    record: uuid.UUID
    role: str


def participations(session: Session, records: Collection[uuid.UUID]) -> list[Participation]:
    """Every victim, perpetrator and child of every live incident any of ``records`` is in.

    One query for all of an incident's stored history: the caller sorts it by person and
    time (app/people/history.py).
    """
    if not records:
        return []
    ip, incident = models.IncidentPerson, models.Incident
    involved = select(ip.incident_id).where(ip.person_id.in_(sorted(records)))
    rows = session.execute(
        select(ip.incident_id, incident.occurred_at, ip.person_id, ip.role)
        .join(incident, incident.id == ip.incident_id)
        .where(
            ip.incident_id.in_(involved),
            incident.erased_at.is_(None),
            ip.role.in_(("victim", "perpetrator", "child")),
        )
    )
    return [Participation(i, at, record, role) for i, at, record, role in rows]


def insert_link_rows(
    session: Session,
    *,
    persons: Sequence[Mapping[str, Any]],
    merges: Sequence[Mapping[str, Any]],
    identifiers: Sequence[Mapping[str, Any]],
    match_keys: Sequence[Mapping[str, Any]],
) -> None:
    """New person records and what linking learned, one batched statement per table."""
    insert_rows(session, models.Person, persons)
    insert_rows(session, PersonMerge, merges)
    insert_rows(session, models.PersonIdentifier, identifiers)
    insert_rows(session, PersonMatchKey, match_keys)


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


def erased_among(session: Session, person_ids: Collection[uuid.UUID]) -> set[uuid.UUID]:
    """Those of these records whose identity was erased."""
    if not person_ids:
        return set()
    return set(
        session.scalars(
            select(models.Person.id).where(
                models.Person.id.in_(sorted(person_ids)), models.Person.erased_at.is_not(None)
            )
        )
    )


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
