"""Erasure: remove the personal data, keep a tombstone and the audit trail.

What stays: the incident's id, source reference, area and dates, the assessment levels
(no inputs, no explanation), flag statuses, every digest, and the audit events (which hold
digests and ids only, so the hash chain still verifies). What goes: every submitted body,
names and dates of birth, stored responses, assessment inputs and explanations, judgement
rationales, agencies' free-text notes and status reasons on the flags, the school URNs on
the flags, identifiers of persons who appear in no other live incident.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import case, delete, or_, select, update
from sqlalchemy.orm import Session

from app.assessments.facts import REPORT_FACT_COLUMNS, RESULT_FACT_COLUMNS
from app.assessments.models import Assessment, Judgement
from app.flags.models import OPEN_STATUSES, Flag, FlagEvent
from app.flags.queue import refresh_queue_row
from app.idempotency.models import IdempotencyKey
from app.incidents import models
from app.notify.outbox import enqueue
from app.people.models import PersonMatchKey
from app.sharing.models import Disclosure


def erase_incident(
    session: Session, incident: models.Incident, *, by: str, reason: str, now: datetime
) -> list[uuid.UUID]:
    """Erase in place; returns the ids of the persons whose identity was erased too."""
    incident.erased_at = now
    incident.erased_by = by
    incident.erasure_reason = reason
    session.execute(
        update(models.IncidentSubmission)
        .where(models.IncidentSubmission.incident_id == incident.id)
        .values(body_raw=None, body=None, response_body=None)
    )
    session.execute(
        update(models.IncidentPerson)
        .where(models.IncidentPerson.incident_id == incident.id)
        .values(given_name=None, family_name=None, date_of_birth=None)
    )
    session.execute(
        update(Assessment)
        .where(Assessment.incident_id == incident.id)
        # The report's facts were taken from that content: they go with it.
        .values(
            inputs=None,
            result=None,
            **dict.fromkeys((*REPORT_FACT_COLUMNS, *RESULT_FACT_COLUMNS)),
        )
    )
    session.execute(
        update(Judgement).where(Judgement.incident_id == incident.id).values(rationale=None)
    )
    # Free text of sharing decisions may describe the people; the decision itself stays.
    session.execute(
        update(Disclosure)
        .where(Disclosure.incident_id == incident.id)
        .values(
            purpose="erased",
            reason_not_shared=case((Disclosure.reason_not_shared.is_(None), None), else_="erased"),
        )
    )
    # Stored replies to writes about the incident hold its personal data (rows written
    # before replies named their incident are found by the location they stored).
    session.execute(
        update(IdempotencyKey)
        .where(
            or_(
                IdempotencyKey.incident_id == incident.id,
                IdempotencyKey.location == f"/v1/incidents/{incident.id}",
            )
        )
        .values(response_body=None)
    )
    # Notes on flag changes and the reasons agencies gave for a status are free text that
    # may name people: cleared on every flag, closed ones included. Done first, so that the
    # closing events added below keep their (non-personal) note.
    session.execute(
        update(FlagEvent)
        .where(FlagEvent.flag_id.in_(select(Flag.id).where(Flag.incident_id == incident.id)))
        .values(note=None)
    )
    closed: list[Flag] = []
    for flag in session.scalars(select(Flag).where(Flag.incident_id == incident.id)):
        if flag.status in OPEN_STATUSES:
            closed.append(flag)
            session.add(
                FlagEvent(
                    flag_id=flag.id,
                    at=now,
                    principal_id=by,
                    role="admin",
                    change="status",
                    from_value=flag.status,
                    to_value="not_required",
                    note="incident erased",
                )
            )
            flag.status = "not_required"
        flag.status_reason = "incident erased"
        # Which school a child attends came from the erased body: it goes with it (and
        # with it the school's view of the flag).
        flag.school_urn = None
        flag.version += 1
        flag.updated_at = now
    session.flush()
    enqueue(session, closed, "status_changed", now)  # subscribers hear the flags closed
    refresh_queue_row(session, incident.id)  # an erased incident leaves the queue
    return _erase_orphaned_persons(session, incident, now)


def _erase_orphaned_persons(
    session: Session, incident: models.Incident, now: datetime
) -> list[uuid.UUID]:
    erased = []
    for ip in incident.persons:
        still_live = session.scalar(
            select(models.IncidentPerson.id)
            .join(models.Incident, models.Incident.id == models.IncidentPerson.incident_id)
            .where(
                models.IncidentPerson.person_id == ip.person_id,
                models.Incident.erased_at.is_(None),
            )
            .limit(1)
        )
        if still_live is None:
            person = session.get(models.Person, ip.person_id)
            if person is not None and person.erased_at is None:
                person.erased_at = now
                for ident in session.scalars(
                    select(models.PersonIdentifier).where(
                        models.PersonIdentifier.person_id == person.id
                    )
                ):
                    session.delete(ident)
                # The name+date-of-birth match key is a digest, but of personal data.
                session.execute(delete(PersonMatchKey).where(PersonMatchKey.person_id == person.id))
                erased.append(person.id)
    return erased
