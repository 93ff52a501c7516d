"""The stored half of the engine's history, looked up from the service's own records.

Only incidents that occurred *before* this one count (order independence: an incident
that arrives late is scored against the history before it, never against later ones).
Erased incidents are gone from history. The engine applies each rule's window itself.

Persons are counted as their survivor: an incident linked to a record that was later
merged into another counts for the survivor, and distinct victims are distinct survivors.
The ids handed to the engine are survivor ids, so an assessment stores the links as they
stood when it was made; a later merge or unmerge changes new assessments only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from app.incidents import models
from app.incidents.schemas import Incident
from app.people import repository
from app.scoring.history import History, LinkedVictim, StoredIncident, StoredMaracReferral

LONDON = ZoneInfo("Europe/London")


def stored_history(
    session: Session, row: models.Incident, incident: Incident, reported: History
) -> History:
    record_of = {p.ref: p.person_id for p in row.persons}
    survivor = repository.survivors(session, record_of.values())
    person_of = {ref: survivor[record] for ref, record in record_of.items()}
    victim_id = person_of[incident.relationship.victim]
    perpetrator_id = person_of[incident.relationship.perpetrator]
    child_ids = {c.ref: person_of[c.ref] for c in incident.children}
    cluster = repository.clusters(session, {victim_id, perpetrator_id, *child_ids.values()})

    victim_incidents = repository.incidents_in_role(
        session, cluster[victim_id], "victim", before=row.occurred_at, exclude=row.id
    )
    last_referral = repository.last_marac_referral(session, [i for i, _ in victim_incidents])

    # Every earlier incident of this perpetrator, and the victim (as a survivor) in each.
    earlier = repository.incidents_with_victims(
        session, cluster[perpetrator_id], before=row.occurred_at, exclude=row.id
    )
    victim_survivor = repository.survivors(session, {v for _, _, v in earlier})
    by_victim: dict[str, set[str]] = defaultdict(set)
    for incident_id, _, victim_record in earlier:
        by_victim[str(victim_survivor[victim_record])].add(str(incident_id))
    perpetrator_incidents = sorted({str(i) for i, _, _ in earlier})

    child_of_record = {record: ref for ref, child in child_ids.items() for record in cluster[child]}
    child_incidents: dict[str, set[str]] = {ref: set() for ref in child_ids}
    for record, incident_id in repository.child_incidents(
        session, child_of_record, before=row.occurred_at, exclude=row.id
    ):
        child_incidents[child_of_record[record]].add(str(incident_id))

    return reported.with_stored(
        victim_person_id=str(victim_id),
        victim_incidents=[StoredIncident(str(i), at) for i, at in victim_incidents],
        victim_last_marac_referral=_referral(last_referral),
        perpetrator_person_id=str(perpetrator_id),
        perpetrator_victims=[LinkedVictim(v, tuple(ids)) for v, ids in by_victim.items()],
        perpetrator_incident_ids=perpetrator_incidents,
        child_person_ids={ref: str(child) for ref, child in child_ids.items()},
        child_incident_ids={ref: sorted(ids) for ref, ids in child_incidents.items()},
    )


def _referral(found: tuple[uuid.UUID, dt.datetime] | None) -> StoredMaracReferral | None:
    """The service's last MARAC referral of the victim, dated on its local day."""
    if found is None:
        return None
    incident_id, occurred_at = found
    return StoredMaracReferral(str(incident_id), occurred_at.astimezone(LONDON).date())
