"""The stored half of the engine's history, looked up from the service's own records.

Only incidents that occurred *before* this one count (order independence: an incident
that arrives late is scored against the history before it, never against later ones).
Erased incidents are gone from history. The engine applies each rule's window itself.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections import defaultdict
from zoneinfo import ZoneInfo

from sqlalchemy import select
from sqlalchemy.orm import Session, aliased

from app.assessments.models import Assessment
from app.incidents import models
from app.incidents.schemas import Incident
from app.scoring.history import History, LinkedVictim, StoredIncident, StoredMaracReferral

LONDON = ZoneInfo("Europe/London")


def _earlier_incidents_of(
    session: Session, person_id: uuid.UUID, role: str, row: models.Incident
) -> list[tuple[uuid.UUID, dt.datetime]]:
    return [
        (incident_id, occurred_at)
        for incident_id, occurred_at in session.execute(
            select(models.Incident.id, models.Incident.occurred_at)
            .join(models.IncidentPerson, models.IncidentPerson.incident_id == models.Incident.id)
            .where(
                models.IncidentPerson.person_id == person_id,
                models.IncidentPerson.role == role,
                models.Incident.id != row.id,
                models.Incident.erased_at.is_(None),
                models.Incident.occurred_at < row.occurred_at,
            )
        )
    ]


def stored_history(
    session: Session, row: models.Incident, incident: Incident, reported: History
) -> History:
    person_of = {p.ref: p.person_id for p in row.persons}
    victim_id = person_of[incident.relationship.victim]
    perpetrator_id = person_of[incident.relationship.perpetrator]

    victim_incidents = _earlier_incidents_of(session, victim_id, "victim", row)
    last_referral = _last_marac_referral(session, [i for i, _ in victim_incidents])

    # Every earlier incident of this perpetrator, and the victim in each.
    victim_person = aliased(models.IncidentPerson)
    by_victim: dict[str, set[str]] = defaultdict(set)
    perpetrator_incidents = []
    for incident_id, _ in _earlier_incidents_of(session, perpetrator_id, "perpetrator", row):
        perpetrator_incidents.append(str(incident_id))
        for (other_victim,) in session.execute(
            select(victim_person.person_id).where(
                victim_person.incident_id == incident_id, victim_person.role == "victim"
            )
        ):
            by_victim[str(other_victim)].add(str(incident_id))

    child_ids = {c.ref: str(person_of[c.ref]) for c in incident.children}
    child_incidents = {
        c.ref: [str(i) for i, _ in _earlier_incidents_of(session, person_of[c.ref], "child", row)]
        for c in incident.children
    }
    return reported.with_stored(
        victim_person_id=str(victim_id),
        victim_incidents=[StoredIncident(str(i), at) for i, at in victim_incidents],
        victim_last_marac_referral=last_referral,
        perpetrator_person_id=str(perpetrator_id),
        perpetrator_victims=[LinkedVictim(v, tuple(ids)) for v, ids in by_victim.items()],
        perpetrator_incident_ids=perpetrator_incidents,
        child_person_ids=child_ids,
        child_incident_ids=child_incidents,
    )


def _last_marac_referral(
    session: Session, incident_ids: list[uuid.UUID]
) -> StoredMaracReferral | None:
    """The latest earlier incident whose assessment referred the victim to MARAC."""
    if not incident_ids:
        return None
    found = session.execute(
        select(models.Incident.id, models.Incident.occurred_at)
        .join(Assessment, Assessment.incident_id == models.Incident.id)
        .where(models.Incident.id.in_(incident_ids), Assessment.marac_refer.is_(True))
        .order_by(models.Incident.occurred_at.desc())
        .limit(1)
    ).first()
    if found is None:
        return None
    return StoredMaracReferral(str(found[0]), found[1].astimezone(LONDON).date())
