"""The stored half of the engine's history, looked up from the service's own records.

Only incidents that occurred *before* this one count (order independence: an incident
that arrives late is scored against the history before it, never against later ones).
Erased incidents are gone from history. The engine applies each rule's window itself.

Persons are counted as their survivor: an incident linked to a record that was later
merged into another counts for the survivor, and distinct victims are distinct survivors.
The ids handed to the engine are survivor ids, so an assessment stores the links as they
stood when it was made; a later merge or unmerge changes new assessments only.

Everything comes from one read of the persons' participations in stored incidents (and,
only when they exist, the survivors of the victims of the perpetrator's incidents and the
victim's last MARAC referral). A person no stored incident knows needs no read at all.
The same participations, at any time, show the patterns across incidents
(app/intake/patterns.py): the perpetrator's victims in every incident, and the victim's
incidents that occurred later than this one.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.contract.incident import Incident
from app.people import repository
from app.people.repository import MergeGraph, Participation
from app.scoring.history import History, LinkedVictim, StoredIncident, StoredMaracReferral

LONDON = ZoneInfo("Europe/London")


@dataclass(frozen=True)
class StoredRecords:
    """What the service holds about one incident's persons, as survivors.

    ``participations`` covers every live stored incident of the victim, the perpetrator
    and the children at any time (excluding the incident being assessed), and
    ``graph`` resolves every record in them to its survivor.
    """

    incident_id: uuid.UUID
    occurred_at: dt.datetime
    victim: uuid.UUID  # survivor ids
    perpetrator: uuid.UUID
    children: Mapping[str, uuid.UUID]
    participations: tuple[Participation, ...]
    graph: MergeGraph

    def of(self, survivor: uuid.UUID, role: str) -> list[Participation]:
        return [
            p
            for p in self.participations
            if p.role == role and self.graph.survivor_of(p.record) == survivor
        ]

    def perpetrator_victims(self) -> dict[uuid.UUID, set[uuid.UUID]]:
        """Each victim (survivor) of the perpetrator's stored incidents, with those incidents,
        this incident included."""
        incidents = {p.incident_id for p in self.of(self.perpetrator, "perpetrator")}
        victims: dict[uuid.UUID, set[uuid.UUID]] = defaultdict(set)
        for p in self.participations:
            if p.role == "victim" and p.incident_id in incidents:
                victims[self.graph.survivor_of(p.record)].add(p.incident_id)
        victims[self.victim].add(self.incident_id)
        return dict(victims)

    def later_victim_incidents(self) -> list[uuid.UUID]:
        """The victim's stored incidents that occurred after this one."""
        return sorted(
            {
                p.incident_id
                for p in self.of(self.victim, "victim")
                if p.occurred_at > self.occurred_at
            }
        )


def stored_records(
    session: Session,
    incident: Incident,
    records: Mapping[str, uuid.UUID],
    graph: MergeGraph,
    *,
    incident_id: uuid.UUID,
    occurred_at: dt.datetime,
    fresh: frozenset[uuid.UUID] = frozenset(),
) -> StoredRecords:
    """The participations of this incident's victim, perpetrator and children.

    ``records`` maps each person ref to the record it is linked to; ``graph`` resolves
    those records (and everything merged with them) to survivors. ``fresh`` records were
    made for this incident: no stored incident holds them, so they are not looked up.
    """
    survivor = {ref: graph.survivor_of(record) for ref, record in records.items()}
    victim = survivor[incident.relationship.victim]
    perpetrator = survivor[incident.relationship.perpetrator]
    children = {c.ref: survivor[c.ref] for c in incident.children}
    wanted = {victim, perpetrator, *children.values()}
    lookup = {r for root in wanted for r in graph.cluster(root)} - fresh
    found = [p for p in repository.participations(session, lookup) if p.incident_id != incident_id]
    # The perpetrator's other victims may belong to clusters not read yet: resolve them.
    perpetrator_records = set(graph.cluster(perpetrator))
    theirs = {
        p.incident_id for p in found if p.role == "perpetrator" and p.record in perpetrator_records
    }
    unknown = {
        p.record
        for p in found
        if p.role == "victim" and p.incident_id in theirs and p.record not in graph.records
    }
    if unknown:
        graph = graph.with_records(repository.merge_graph(session, unknown).survivor)
    return StoredRecords(
        incident_id=incident_id,
        occurred_at=occurred_at,
        victim=victim,
        perpetrator=perpetrator,
        children=children,
        participations=tuple(found),
        graph=graph,
    )


def stored_history(session: Session, stored: StoredRecords, reported: History) -> History:
    """``reported`` with the stored half added: only incidents before this one count."""
    before = stored.occurred_at
    victim_incidents = sorted(
        {
            (p.incident_id, p.occurred_at)
            for p in stored.of(stored.victim, "victim")
            if p.occurred_at < before
        },
        key=lambda pair: (pair[1], pair[0]),
    )
    last_referral = (
        repository.last_marac_referral(session, [i for i, _ in victim_incidents])
        if victim_incidents
        else None
    )
    earlier = {
        p.incident_id
        for p in stored.of(stored.perpetrator, "perpetrator")
        if p.occurred_at < before
    }
    by_victim: dict[str, set[str]] = defaultdict(set)
    for p in stored.participations:
        if p.role == "victim" and p.incident_id in earlier:
            by_victim[str(stored.graph.survivor_of(p.record))].add(str(p.incident_id))
    child_incidents = {
        ref: sorted(
            {str(p.incident_id) for p in stored.of(child, "child") if p.occurred_at < before}
        )
        for ref, child in stored.children.items()
    }
    return reported.with_stored(
        victim_person_id=str(stored.victim),
        victim_incidents=[StoredIncident(str(i), at) for i, at in victim_incidents],
        victim_last_marac_referral=_referral(last_referral),
        perpetrator_person_id=str(stored.perpetrator),
        perpetrator_victims=[LinkedVictim(v, tuple(ids)) for v, ids in by_victim.items()],
        perpetrator_incident_ids=sorted(str(i) for i in earlier),
        child_person_ids={ref: str(child) for ref, child in stored.children.items()},
        child_incident_ids=child_incidents,
    )


def _referral(found: tuple[uuid.UUID, dt.datetime] | None) -> StoredMaracReferral | None:
    """The service's last MARAC referral of the victim, dated on its local day."""
    if found is None:
        return None
    incident_id, occurred_at = found
    return StoredMaracReferral(str(incident_id), occurred_at.astimezone(LONDON).date())
