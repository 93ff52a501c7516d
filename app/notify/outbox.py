"""Writing notifications in the same transaction as the flag change they announce.

The flag write paths call :func:`enqueue` with the flags they raised or changed, inside
their own unit of work: a change that rolls back leaves no notification, and one that
commits cannot lose its notifications, whatever happens to the process after the commit.

Payloads carry **no personal data**: the flag's id, type, agency, subject role (victim,
child, perpetrator), status and due time, and links to the flag in the API and the screens.
The receiver fetches what it is entitled to, and that read is audited as a disclosure.
The stored links are relative; the dispatcher sends them absolute under the service's
public address when it has one (:func:`as_sent`, ``TRIAGE_PUBLIC_BASE_URL``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Protocol

from sqlalchemy.orm import Session

from app.db import new_id
from app.notify import repository
from app.notify.models import Subscription
from app.responses import json_datetime


class FlagFacts(Protocol):
    """What a notification needs to know about a flag (a stored ``Flag`` or a new one)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def type(self) -> str: ...
    @property
    def agency(self) -> str: ...
    @property
    def area(self) -> str: ...
    @property
    def school_urn(self) -> str | None: ...
    @property
    def subject_kind(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def due_at(self) -> dt.datetime: ...


def matches(sub: Subscription, flag: FlagFacts) -> bool:
    """A subscription hears of its agency's flags, in its area and school if it names them."""
    return (
        sub.agency == flag.agency
        and (sub.area is None or sub.area == flag.area)
        and (sub.school_urn is None or sub.school_urn == flag.school_urn)
    )


def payload(
    notification_id: uuid.UUID, kind: str, flag: FlagFacts, now: dt.datetime
) -> dict[str, Any]:
    """The webhook body (Standard Webhooks' ``type``, ``timestamp``, ``data``)."""
    return {
        "type": f"flag.{kind}",
        "timestamp": json_datetime(now),
        "data": {
            "notification_id": str(notification_id),
            "flag_id": str(flag.id),
            "flag_type": flag.type,
            "agency": flag.agency,
            "subject_role": flag.subject_kind,
            "status": flag.status,
            "due_at": json_datetime(flag.due_at),
            "links": {"api": f"/v1/flags/{flag.id}", "screen": f"/ui/flags/{flag.id}"},
        },
    }


def as_sent(body: dict[str, Any], public_base_url: str | None) -> dict[str, Any]:
    """The stored payload as it is sent: its links absolute under ``public_base_url`` (a
    validated setting without a trailing slash), or left relative without one."""
    if public_base_url is None:
        return body
    data = body["data"]
    links = {name: public_base_url + path for name, path in data["links"].items()}
    return {**body, "data": {**data, "links": links}}


def notifications(
    session: Session, flags: Sequence[FlagFacts], kind: str, now: dt.datetime
) -> list[dict[str, Any]]:
    """The ``kind`` notification rows owed for ``flags``: one per flag and subscription
    that matches it (not yet written: see :func:`write` and :func:`enqueue`)."""
    if not flags:
        return []
    subs = repository.active_subscriptions(session, {f.agency for f in flags})
    rows = []
    for flag in flags:
        for sub in subs:
            if matches(sub, flag):
                nid = new_id()
                rows.append(
                    {
                        "id": nid,
                        "subscription_id": sub.id,
                        "flag_id": flag.id,
                        "kind": kind,
                        "payload": payload(nid, kind, flag, now),
                        "created_at": now,
                        "status": "pending",
                        "attempts": 0,
                        "next_attempt_at": now,
                        "last_error_kind": None,
                        "delivered_at": None,
                        "acknowledged_at": None,
                    }
                )
    return rows


def write(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    """Insert notification rows built by :func:`notifications`, in the caller's transaction."""
    repository.insert_notifications(session, rows)


def enqueue(session: Session, flags: Sequence[FlagFacts], kind: str, now: dt.datetime) -> int:
    """Write a ``kind`` notification for each flag and each subscription that matches it,
    in the caller's transaction. Returns how many were written."""
    rows = notifications(session, flags, kind, now)
    write(session, rows)
    return len(rows)


def with_pending(
    statuses: Mapping[uuid.UUID, str], rows: Iterable[Mapping[str, Any]]
) -> dict[uuid.UUID, str]:
    """``statuses`` (each flag's notification status) after ``rows`` are written: a flag
    with a new notification is pending, unless one of its earlier ones failed."""
    out = dict(statuses)
    for row in rows:
        if out.get(row["flag_id"]) != "failed":
            out[row["flag_id"]] = "pending"
    return out
