"""Response and request shapes for flags."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, Field
from sqlalchemy import Row

from app.flags.models import OPEN_STATUSES, Flag
from app.flags.store import NewFlag
from app.responses import json_datetime

NotificationStatus = Literal["pending", "delivered", "acknowledged", "failed"]


class FlagOut(BaseModel):
    id: str
    incident_id: str
    type: str
    agency: str
    subject_ref: str
    subject_kind: str
    priority: int = Field(description="1 is the most urgent.")
    due_at: AwareDatetime
    overdue: bool
    status: str
    status_reason: str | None = None
    assignee: str | None = None
    needs_review: bool = Field(
        description="A later assessment no longer meets the condition: a person decides."
    )
    reason: str
    because: list[dict[str, Any]] = Field(description="Pointers into the explanation.")
    action: str
    rule_id: str
    rules_version: str
    etag: str = Field(description="Send as If-Match to change the flag.")
    created_at: AwareDatetime
    updated_at: AwareDatetime
    notification_status: NotificationStatus | None = Field(
        default=None,
        description="Where the flag's notifications to subscribing agencies stand, as of "
        "this answer: the least advanced of them (failed if any failed, else pending, "
        "delivered, acknowledged); null when no subscription was notified.",
    )

    @classmethod
    def of(
        cls,
        flag: Flag | NewFlag | Row[Any],
        now: datetime,
        notified: Mapping[uuid.UUID, str] | None = None,
    ) -> FlagOut:
        # Built from a stored (or about to be stored) flag, whose columns the database
        # constrains: constructed without validation, which cost more than the query.
        return cls.model_construct(**_values(flag, now, notified))


def flag_json(
    flag: Flag | NewFlag | Row[Any],
    now: datetime,
    notified: Mapping[uuid.UUID, str] | None = None,
) -> dict[str, Any]:
    """``FlagOut.of(flag, now, notified).model_dump(mode="json")``, built directly (a third
    of the cost): the intake's result and every page of flags are lists of these.
    ``notified``: each flag's notification status (``app.notify.repository.status_of_flags``)."""
    values = _values(flag, now, notified)
    for name in ("due_at", "created_at", "updated_at"):
        values[name] = json_datetime(values[name])
    return values


def _values(
    flag: Flag | NewFlag | Row[Any], now: datetime, notified: Mapping[uuid.UUID, str] | None
) -> dict[str, Any]:
    """FlagOut's fields, in its order."""
    return {
        "id": str(flag.id),
        "incident_id": str(flag.incident_id),
        "type": flag.type,
        "agency": flag.agency,
        "subject_ref": flag.subject_ref,
        "subject_kind": flag.subject_kind,
        "priority": flag.priority,
        "due_at": flag.due_at,
        "overdue": flag.status in OPEN_STATUSES and flag.due_at < now,
        "status": flag.status,
        "status_reason": flag.status_reason,
        "assignee": flag.assignee,
        "needs_review": flag.needs_review,
        "reason": flag.reason,
        "because": list(flag.because or []),
        "action": flag.action,
        "rule_id": flag.rule_id,
        "rules_version": flag.rules_version,
        "etag": etag(flag),
        "created_at": flag.created_at,
        "updated_at": flag.updated_at,
        "notification_status": notified.get(flag.id) if notified else None,
    }


def etag(flag: Flag | NewFlag | Row[Any]) -> str:
    return f'"{flag.id}.{flag.version}"'
