"""Turning a flag proposal (the pure engine's output) into a stored flag."""

from __future__ import annotations

import uuid
from datetime import datetime

from app.db import new_id
from app.flags.engine import FlagProposal
from app.flags.models import Flag


def flag_from_proposal(
    proposal: FlagProposal,
    *,
    incident_id: uuid.UUID,
    assessment_id: uuid.UUID,
    area: str,
    subject_person_id: uuid.UUID | None,
    now: datetime,
) -> Flag:
    """A new open flag. Its id is set now, so history rows can refer to it before a flush."""
    p = proposal
    return Flag(
        id=new_id(),
        incident_id=incident_id,
        assessment_id=assessment_id,
        area=area,
        type=p.type,
        agency=p.agency,
        subject_kind=p.subject_kind,
        subject_ref=p.subject_ref,
        subject_person_id=subject_person_id,
        priority=p.priority,
        due_at=p.due_at,
        status="open",
        rule_id=p.rule_id,
        rules_id=p.rules_id,
        rules_version=p.rules_version,
        rules_sha256=p.rules_sha256,
        reason=p.reason,
        because=[b.to_dict() for b in p.because],
        action=p.action,
        dedupe_key=p.dedupe_key,
        created_at=now,
        updated_at=now,
    )
