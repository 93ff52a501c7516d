"""The SQL of subscriptions and the outbox."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Sequence
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from app.db import insert_rows
from app.notify.models import Notification, Subscription


def active_subscriptions(session: Session, agencies: Collection[str]) -> list[Subscription]:
    if not agencies:
        return []
    return list(
        session.scalars(
            select(Subscription).where(
                Subscription.agency.in_(sorted(agencies)), Subscription.active.is_(True)
            )
        )
    )


def insert_notifications(session: Session, rows: Sequence[dict[str, Any]]) -> None:
    insert_rows(session, Notification, rows)


def add_subscription(session: Session, values: dict[str, Any]) -> Subscription:
    sub = Subscription(**values)
    session.add(sub)
    session.flush()
    return sub


def list_subscriptions(session: Session) -> list[Subscription]:
    return list(
        session.scalars(
            select(Subscription)
            .where(Subscription.active.is_(True))
            .order_by(Subscription.created_at, Subscription.id)
        )
    )


def get_subscription(session: Session, subscription_id: uuid.UUID) -> Subscription | None:
    return session.get(Subscription, subscription_id)


def claim_due(
    session: Session, now: dt.datetime, limit: int, lease_until: dt.datetime
) -> list[tuple[Notification, Subscription]]:
    """Due pending notifications, locked with ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (a
    row another dispatcher holds is passed over), then leased: ``next_attempt_at`` moves to
    ``lease_until``, so after this commit no other dispatcher finds them due until the lease
    runs out (a dispatcher that dies mid-delivery leaves them to be retried). SQLite has one
    dispatcher, and a writing unit holds the database's write lock."""
    ids = list(
        session.scalars(
            select(Notification.id)
            .where(Notification.status == "pending", Notification.next_attempt_at <= now)
            .order_by(Notification.next_attempt_at, Notification.id)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    )
    if not ids:
        return []
    session.execute(
        update(Notification)
        .where(Notification.id.in_(ids))
        .values(next_attempt_at=lease_until)
        .execution_options(synchronize_session=False)
    )
    rows = session.execute(
        select(Notification, Subscription)
        .join(Subscription, Subscription.id == Notification.subscription_id)
        .where(Notification.id.in_(ids))
        .order_by(Notification.created_at, Notification.id)
    )
    return [(n, s) for n, s in rows]


def settle(
    session: Session, notification_id: uuid.UUID, attempts: int, values: dict[str, Any]
) -> bool:
    """Record an attempt's outcome, if the row is still the one this dispatcher leased
    (pending, at the attempt count it claimed)."""
    result = session.execute(
        update(Notification)
        .where(
            Notification.id == notification_id,
            Notification.status == "pending",
            Notification.attempts == attempts,
        )
        .values(attempts=attempts + 1, **values)
        .execution_options(synchronize_session=False)
    )
    return getattr(result, "rowcount", 0) == 1


def get_notification(session: Session, notification_id: uuid.UUID) -> Notification | None:
    return session.get(Notification, notification_id)


def acknowledge(session: Session, notification_id: uuid.UUID, now: dt.datetime) -> None:
    session.execute(
        update(Notification)
        .where(Notification.id == notification_id, Notification.status == "delivered")
        .values(status="acknowledged", acknowledged_at=now)
        .execution_options(synchronize_session=False)
    )


def status_of_flags(session: Session, flag_ids: Collection[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each flag's notification status: the least advanced of its notifications (failed
    first, then pending, delivered, acknowledged); flags with none are absent."""
    if not flag_ids:
        return {}
    rows = session.execute(
        select(Notification.flag_id, Notification.status, func.count())
        .where(Notification.flag_id.in_(list(flag_ids)))
        .group_by(Notification.flag_id, Notification.status)
    )
    order = {"failed": 0, "pending": 1, "delivered": 2, "acknowledged": 3}
    out: dict[uuid.UUID, str] = {}
    for flag_id, status, _n in rows:
        if flag_id not in out or order[status] < order[out[flag_id]]:
            out[flag_id] = status
    return out


def counts_by_status(session: Session) -> dict[str, int]:
    rows = session.execute(select(Notification.status, func.count()).group_by(Notification.status))
    return {status: int(n) for status, n in rows}


def total_attempts(session: Session) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(Notification.attempts), 0))) or 0)


def oldest_pending_created_at(session: Session) -> dt.datetime | None:
    value: dt.datetime | None = session.scalar(
        select(func.min(Notification.created_at)).where(Notification.status == "pending")
    )
    return value


def list_notifications(
    session: Session, *, status: str, agency: str | None, limit: int
) -> tuple[list[tuple[Notification, Subscription]], int]:
    """The newest ``limit`` notifications in ``status`` (for the dead letters: ``failed``),
    with their subscriptions, and how many there are in all."""
    conditions = [Notification.status == status]
    if agency is not None:
        conditions.append(Subscription.agency == agency)
    joined = select(Notification, Subscription).join(
        Subscription, Subscription.id == Notification.subscription_id
    )
    rows = session.execute(
        joined.where(*conditions)
        .order_by(Notification.created_at.desc(), Notification.id.desc())
        .limit(limit)
    )
    total = session.scalar(
        select(func.count())
        .select_from(Notification)
        .join(Subscription, Subscription.id == Notification.subscription_id)
        .where(*conditions)
    )
    return [(n, s) for n, s in rows], int(total or 0)


def requeue_failed(
    session: Session,
    now: dt.datetime,
    *,
    notification_id: uuid.UUID | None = None,
    subscription_id: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Give failed notifications (one, one subscription's, or every one) a fresh retry
    budget: pending, no attempts, due now. Returns the ids requeued."""
    conditions = [Notification.status == "failed"]
    if notification_id is not None:
        conditions.append(Notification.id == notification_id)
    if subscription_id is not None:
        conditions.append(Notification.subscription_id == subscription_id)
    ids = list(session.scalars(select(Notification.id).where(*conditions).with_for_update()))
    if ids:
        session.execute(
            update(Notification)
            .where(Notification.id.in_(ids), Notification.status == "failed")
            .values(status="pending", attempts=0, next_attempt_at=now, last_error_kind=None)
            .execution_options(synchronize_session=False)
        )
    return ids
