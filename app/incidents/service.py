"""Incidents as records: where they live, who may see them, and who is in them.

The write path (intake, revision, judgement) is the orchestrator in ``app/intake``; this
package holds the incident's own storage and the object-level scope check every router
applies before it reads or changes anything about an incident.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from sqlalchemy.orm import Session

from app.auth.policy import incident_in_scope
from app.auth.principal import Principal
from app.contract.incident import Incident
from app.errors import Forbidden, NotFound
from app.incidents import models, repository

INCIDENT_NOT_VISIBLE = "No incident with this id is visible to you."


def incident_location(incident_id: uuid.UUID | str) -> str:
    return f"/v1/incidents/{incident_id}"


def check_source_system(principal: Principal, incident: Incident) -> None:
    if principal.source_system is not None and incident.source.system != principal.source_system:
        raise Forbidden("This credential may only submit incidents for its own source system.")


def person_ids(session: Session, incident_id: uuid.UUID) -> list[uuid.UUID]:
    row = repository.get(session, incident_id)
    return [p.person_id for p in row.persons] if row is not None else []


def visible_incident(
    session: Session,
    principal: Principal,
    incident_id: uuid.UUID,
    message: str = INCIDENT_NOT_VISIBLE,
    *,
    agency_subjects: Callable[[uuid.UUID], set[str]] | None = None,
) -> models.Incident:
    """The incident if ``principal`` may see it; otherwise the same 404 as a missing one
    (OWASP API1: nothing reveals that a record outside the caller's scope exists).

    An agency sees an incident only through its flags on it: routes that serve agencies
    pass ``agency_subjects`` (the refs the agency's flags are about); without it an agency
    sees nothing.
    """
    row = repository.get(session, incident_id)
    if row is None:
        raise NotFound(message)
    subjects = (
        agency_subjects(row.id)
        if principal.role == "agency" and agency_subjects is not None
        else set()
    )
    if not incident_in_scope(
        principal, area=row.area, source_system=row.source_system, agency_subjects=subjects
    ):
        raise NotFound(message)
    return row
