"""Turning a flag proposal (the pure engine's output) into a stored flag."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from app.contract.incident import Incident
from app.db import new_id
from app.flags.engine import FlagProposal
from app.flags.models import Flag


@dataclass(slots=True)
class NewFlag:
    """A flag about to be inserted: the columns of ``flags``, without the ORM's bookkeeping
    (an intake makes a dozen of these and never needs them managed)."""

    id: uuid.UUID
    incident_id: uuid.UUID
    assessment_id: uuid.UUID
    area: str
    type: str
    agency: str
    subject_kind: str
    subject_ref: str
    subject_person_id: uuid.UUID | None
    school_urn: str | None
    priority: int
    due_at: datetime
    status: str
    status_reason: str | None
    assignee: str | None
    rule_id: str
    rules_id: str
    rules_version: str
    rules_sha256: str
    reason: str
    because: list[dict[str, Any]]
    action: str
    dedupe_key: str
    needs_review: bool
    version: int
    created_at: datetime
    updated_at: datetime
    overdue_noticed_at: datetime | None = None


def flag_from_proposal(
    proposal: FlagProposal,
    *,
    incident_id: uuid.UUID,
    assessment_id: uuid.UUID,
    area: str,
    subject_person_id: uuid.UUID | None,
    school_urn: str | None,
    now: datetime,
) -> NewFlag:
    """A new open flag. Its id is set now, so history rows can refer to it before insert.

    ``school_urn``: the school the subject child attends (``child_school_urns``), which
    decides which school sees the flag."""
    p = proposal
    return NewFlag(
        id=new_id(),
        incident_id=incident_id,
        assessment_id=assessment_id,
        area=area,
        type=p.type,
        agency=p.agency,
        subject_kind=p.subject_kind,
        subject_ref=p.subject_ref,
        subject_person_id=subject_person_id,
        school_urn=school_urn,
        priority=p.priority,
        due_at=p.due_at,
        status="open",
        status_reason=None,
        assignee=None,
        rule_id=p.rule_id,
        rules_id=p.rules_id,
        rules_version=p.rules_version,
        rules_sha256=p.rules_sha256,
        reason=p.reason,
        because=[b.to_dict() for b in p.because],
        action=p.action,
        dedupe_key=p.dedupe_key,
        needs_review=False,
        version=1,
        created_at=now,
        updated_at=now,
    )


def child_school_urns(incident: Incident) -> dict[str, str]:
    """The school URN of each child of the incident that has one, by person ref."""
    return {
        p.ref: p.child.school.urn
        for p in incident.children
        if p.child is not None and p.child.school is not None and p.child.school.urn
    }


# The stored columns of a flag, in the table's order (what a batched insert writes).
FLAG_COLUMNS = tuple(c.key for c in Flag.__table__.columns)


def flag_rows(flags: Sequence[NewFlag]) -> list[dict[str, Any]]:
    """Insert rows for new flags made by ``flag_from_proposal`` (which sets every column)."""
    return [{name: getattr(flag, name) for name in FLAG_COLUMNS} for flag in flags]


def flag_event_row(
    flag: Flag | NewFlag,
    *,
    principal_id: str,
    role: str,
    change: str,
    from_value: str | None,
    to_value: str | None,
    at: datetime,
    note: str | None = None,
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "flag_id": flag.id,
        "at": at,
        "principal_id": principal_id,
        "role": role,
        "change": change,
        "from_value": from_value,
        "to_value": to_value,
        "note": note,
    }
