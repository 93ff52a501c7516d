"""Working a flag: status transitions, assignee, review marks and notes.

Transitions (docs/contract.md "Flags": ``open → acknowledged → in_progress → done``, or
``not_required`` with a reason) are forward only:

- ``open`` → ``acknowledged``, ``in_progress``, ``done`` or ``not_required``
  (a step may be skipped: a school that is notified at once goes straight to ``done``);
- ``acknowledged`` → ``in_progress``, ``done`` or ``not_required``;
- ``in_progress`` → ``done`` or ``not_required``;
- ``done`` and ``not_required`` are final: nothing goes back, and a closed flag's assignee
  no longer changes (notes may still be added). A step backwards is a 409.

Every change is one conditional ``UPDATE … WHERE id = ? AND version = ?`` (the ETag is the
version), so two people working the same flag cannot overwrite each other: the second
gets a 412 with the flag as it now stands. Each change adds a history event in the same
transaction, and a status change rewrites the incident's queue row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy.orm import Session

from app.auth.principal import Principal
from app.errors import Conflict, PreconditionFailed
from app.flags import repository
from app.flags.api_schemas import FlagChange
from app.flags.models import OPEN_STATUSES, Flag, FlagEvent
from app.flags.queue import refresh_queue_row
from app.flags.schemas import FlagOut, etag
from app.incidents.repository import lock_incident
from app.notify import repository as notify_repository
from app.notify.outbox import enqueue

TRANSITIONS: dict[str, tuple[str, ...]] = {
    "open": ("acknowledged", "in_progress", "done", "not_required"),
    "acknowledged": ("in_progress", "done", "not_required"),
    "in_progress": ("done", "not_required"),
    "done": (),
    "not_required": (),
}
CLOSED_STATUSES = ("done", "not_required")


def stale(session: Session, flag: Flag, now: dt.datetime) -> PreconditionFailed:
    """A 412 that carries the flag as it now stands, so a screen can re-render it."""
    return PreconditionFailed(
        "The flag has changed since you read it; the current flag is in `current`.",
        headers={"ETag": etag(flag)},
        current=flag_out(session, flag, now),
    )


def flag_out(session: Session, flag: Flag, now: dt.datetime) -> dict[str, Any]:
    """One stored flag as the API shows it (``FlagOut`` as JSON), with its notifications'
    status."""
    notified = notify_repository.status_of_flags(session, [flag.id])
    return FlagOut.of(flag, now, notified).model_dump(mode="json", by_alias=True)


def change_flag(
    session: Session,
    flag: Flag,
    change: FlagChange,
    *,
    principal: Principal,
    now: dt.datetime,
) -> dict[str, tuple[str | None, str | None]]:
    """Apply ``change`` if the flag is still at the version the caller read.

    Returns what changed (``{field: (from, to)}``; empty when nothing did). Raises 409 for
    a transition the rules above do not allow, 412 when another change came first.
    """
    given = change.model_fields_set
    values: dict[str, Any] = {}
    changed: dict[str, tuple[str | None, str | None]] = {}
    old_status = flag.status
    if change.status is not None and change.status != old_status:
        allowed = TRANSITIONS[old_status]
        if change.status not in allowed:
            raise Conflict(
                f"A flag that is {old_status} cannot become {change.status}.",
                current_status=old_status,
                allowed=list(allowed),
            )
        values["status"] = change.status
        values["status_reason"] = change.status_reason
        changed["status"] = (old_status, change.status)
    elif change.status_reason is not None and change.status_reason != flag.status_reason:
        # The same status with a new reason: the reason is corrected.
        values["status_reason"] = change.status_reason
        changed["status_reason"] = (None, None)
    if "assignee" in given and change.assignee != flag.assignee:
        if old_status in CLOSED_STATUSES:
            raise Conflict(
                f"The flag is {old_status}: a closed flag is not reassigned.",
                current_status=old_status,
                allowed=[],
            )
        values["assignee"] = change.assignee
        changed["assignee"] = (flag.assignee, change.assignee)
    closing = values.get("status") in CLOSED_STATUSES
    if flag.needs_review and ("needs_review" in given or closing):
        values["needs_review"] = False
        changed["needs_review"] = ("true", "false")
    if not values:
        return {}
    values["updated_at"] = now
    # Incident first, then flag: the order reassessment takes its locks in (no deadlock).
    lock_incident(session, flag.incident_id)
    if not repository.update_if_version(session, flag, flag.version, values):
        raise stale(session, flag, now)

    def event(change_name: str, old: str | None, new: str | None, note: str | None) -> None:
        repository.add_event(
            session,
            flag,
            principal_id=principal.id,
            role=principal.role,
            change=change_name,
            from_value=old,
            to_value=new,
            at=now,
            note=note,
        )

    if "status" in changed:
        event("status", old_status, flag.status, flag.status_reason)
    if "status_reason" in changed:
        event("status_reason", None, None, flag.status_reason)
    if "assignee" in changed:
        old, new = changed["assignee"]
        event("assignee", old, new, None)
    if "needs_review" in changed:
        event(
            "review_cleared",
            "true",
            "false",
            "closed by a person" if closing else "reviewed by a person and kept",
        )
    if "status" in changed:
        # The subscribers' notice, in this transaction (app/notify/outbox.py).
        enqueue(session, [flag], "status_changed", now)
    if "status" in changed and (old_status in OPEN_STATUSES) != (flag.status in OPEN_STATUSES):
        refresh_queue_row(session, flag.incident_id)
    return changed


def add_note(
    session: Session, flag: Flag, text: str, *, principal: Principal, now: dt.datetime
) -> FlagEvent:
    """A note in the flag's history. Notes do not change the flag, nor its ETag."""
    return repository.add_event(
        session,
        flag,
        principal_id=principal.id,
        role=principal.role,
        change="note",
        from_value=None,
        to_value=None,
        at=now,
        note=text,
    )
