"""Recording information-sharing decisions (inside the caller's unit of work)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Unprocessable
from app.flags.models import Flag
from app.incidents.models import Incident
from app.sharing.models import Disclosure
from app.sharing.schemas import DisclosureIn, DisclosureOut

# A decision may be recorded after it was made, never before: allow for clock skew only.
CLOCK_SKEW = dt.timedelta(minutes=5)


def record_disclosure(
    session: Session,
    incident: Incident,
    body: DisclosureIn,
    *,
    principal: Principal,
    now: dt.datetime,
) -> Disclosure:
    refs = {p.ref for p in incident.persons}
    subjects = sorted(refs) if body.subject_refs is None else list(dict.fromkeys(body.subject_refs))
    errors = [
        {"loc": ["body", "subject_refs", i], "msg": "not a person in this incident"}
        for i, ref in enumerate(subjects)
        if ref not in refs
    ]
    if body.flag_id is not None:
        flag = session.get(Flag, body.flag_id)
        if flag is None or flag.incident_id != incident.id:
            errors.append({"loc": ["body", "flag_id"], "msg": "not a flag of this incident"})
    decided_at = (body.decided_at or now).astimezone(dt.UTC)
    if decided_at > now + CLOCK_SKEW:
        errors.append({"loc": ["body", "decided_at"], "msg": "in the future"})
    if errors:
        raise Unprocessable("The decision does not fit this incident.", errors=errors)
    disclosure = Disclosure(
        incident_id=incident.id,
        flag_id=body.flag_id,
        decision=body.decision,
        recipient_agency=body.recipient_agency,
        recipient_detail=body.recipient_detail,
        lawful_basis=body.lawful_basis,
        purpose=body.purpose,
        categories_shared=list(body.categories_shared),
        subject_refs=subjects,
        consent_status=body.consent_status,
        reason_not_shared=body.reason_not_shared,
        decided_by=principal.id,
        decided_by_role=principal.role,
        decided_at=decided_at,
        recorded_at=now,
    )
    session.add(disclosure)
    session.flush()
    return disclosure


def disclosures_of(session: Session, incident_id: uuid.UUID) -> list[Disclosure]:
    return list(
        session.scalars(
            select(Disclosure)
            .where(Disclosure.incident_id == incident_id)
            .order_by(Disclosure.decided_at.desc(), Disclosure.recorded_at.desc())
        )
    )


def person_ids_of(incident: Incident, refs: list[str]) -> list[uuid.UUID]:
    wanted = set(refs)
    return [p.person_id for p in incident.persons if p.ref in wanted]


def disclosure_out(d: Disclosure) -> DisclosureOut:
    return DisclosureOut.model_validate(
        {
            "id": str(d.id),
            "incident_id": str(d.incident_id),
            "flag_id": str(d.flag_id) if d.flag_id is not None else None,
            "decision": d.decision,
            "recipient_agency": d.recipient_agency,
            "recipient_detail": d.recipient_detail,
            "lawful_basis": d.lawful_basis,
            "purpose": d.purpose,
            "categories_shared": list(d.categories_shared or []),
            "subject_refs": list(d.subject_refs or []),
            "consent_status": d.consent_status,
            "reason_not_shared": d.reason_not_shared,
            "decided_by": d.decided_by,
            "decided_by_role": d.decided_by_role,
            "decided_at": d.decided_at,
            "recorded_at": d.recorded_at,
        }
    )
