"""Delivering the outbox: ``triage notify run``, a process of its own.

Each round claims a batch of due notifications in one short unit of work (row locks with
``SKIP LOCKED`` on PostgreSQL, so several dispatchers never claim the same row; on SQLite
one dispatcher) and leases them, then sends each one outside any transaction by its
subscription's channel (:mod:`app.notify.channels`): a webhook POST signed per Standard
Webhooks (``webhook-id`` is the notification id, so a receiver can deduplicate), or an
email (its ``Message-ID`` made from the notification id). It records the outcome in a unit
of its own: a 2xx, or the SMTP server's acceptance, is ``delivered`` (with a ``disclose``
audit event to the agency, naming the flag and the channel); anything else is retried with
exponential backoff and full jitter until ``notify_max_attempts``, then ``failed`` (the
dead letter). Delivery is at least once: a dispatcher that dies after sending and before
recording it leaves the row to be sent again when its lease runs out.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog

from app.audit.chain import AuditEntry, append, digest_of
from app.config import Settings
from app.db import Database, utcnow
from app.notify import channels, repository
from app.notify.channels import Delivery
from app.notify.models import Notification, Subscription
from app.notify.outbox import as_sent
from app.notify.secrets import unseal

log = structlog.get_logger(__name__)

ACTOR = "system:notify"


@dataclass
class Round:
    """What one round did (for tests, logs and the counters)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    claimed: int = 0
    ids: list[uuid.UUID] = field(default_factory=list)


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Full jitter: uniform in [0, min(max, base·2^(attempts-1))] (at least one second)."""
    cap: float = min(
        settings.notify_backoff_max_seconds,
        settings.notify_backoff_base_seconds * 2 ** max(attempts - 1, 0),
    )
    return max(random.uniform(0, cap), min(cap, 1.0))  # noqa: S311 (jitter, not a secret)


def claim(database: Database, settings: Settings, now: dt.datetime) -> list[Delivery]:
    # The lease outlasts the slowest possible batch, so nothing is claimed twice while sent.
    lease = dt.timedelta(seconds=settings.notify_timeout_seconds * settings.notify_batch_size + 30)
    with database.unit() as session:
        rows = repository.claim_due(session, now, settings.notify_batch_size, now + lease)
        return [_delivery(settings, n, s) for n, s in rows]


def _delivery(settings: Settings, n: Notification, s: Subscription) -> Delivery:
    payload = as_sent(n.payload, settings.public_base_url)
    sealed = s.secret_encrypted
    return Delivery(
        id=n.id,
        flag_id=n.flag_id,
        agency=s.agency,
        channel=s.channel,
        target=(s.email if s.channel == "email" else s.url) or "",
        secret=unseal(settings, sealed) if sealed is not None else None,
        payload=payload,
        body=orjson.dumps(payload),
        attempts=n.attempts,
    )


def record(database: Database, settings: Settings, item: Delivery, error: str | None) -> str:
    """The attempt's outcome: delivered, retried or failed (or lost: another took it)."""
    now = utcnow()
    attempts = item.attempts + 1
    with database.unit() as session:
        if error is None:
            values: dict[str, Any] = {
                "status": "delivered",
                "delivered_at": now,
                "last_error_kind": None,
            }
            outcome = "delivered"
        elif attempts >= settings.notify_max_attempts:
            values = {"status": "failed", "last_error_kind": error}
            outcome = "failed"
        else:
            wait = dt.timedelta(seconds=backoff_seconds(settings, attempts))
            values = {"next_attempt_at": now + wait, "last_error_kind": error}
            outcome = "retried"
        if not repository.settle(session, item.id, item.attempts, values):
            return "lost"
        if outcome == "delivered":
            append(
                session,
                AuditEntry(
                    principal_id=ACTOR,
                    role="system",
                    agency=None,
                    operation="disclose",
                    record_type="flag",
                    record_ids=[str(item.flag_id)],
                    recipients=[f"agency:{item.agency}"],
                    digest=digest_of(item.body.decode("utf-8")),
                    detail={"channel": item.channel, "notification_id": str(item.id)},
                ),
            )
    return outcome


Sweep = Callable[[Database], int]


def run_once(
    database: Database,
    settings: Settings,
    client: httpx.Client | None = None,
    *,
    sweep: Sweep | None = None,
) -> Round:
    """One round: the scheduled sweep (overdue notices, written by a layer above), then
    claim a batch, deliver it, record each outcome."""
    result = Round()
    if sweep is not None:
        sweep(database)
    items = claim(database, settings, utcnow())
    result.claimed = len(items)
    own = client is None
    http = client or httpx.Client(timeout=settings.notify_timeout_seconds, follow_redirects=False)
    try:
        for item in items:
            error = channels.send(item, settings, http)
            outcome = record(database, settings, item, error)
            if outcome == "delivered":
                result.delivered += 1
                result.ids.append(item.id)
            elif outcome == "retried":
                result.retried += 1
            elif outcome == "failed":
                result.failed += 1
            log.info(
                "notification_attempt",
                notification_id=str(item.id),
                outcome=outcome,
                error_kind=error,
            )
    finally:
        if own:
            http.close()
    return result


def run(
    database: Database, settings: Settings, *, once: bool = False, sweep: Sweep | None = None
) -> Round:
    """Rounds until interrupted (or one, with ``once``); sleeps when nothing was due."""
    total = Round()
    with httpx.Client(timeout=settings.notify_timeout_seconds, follow_redirects=False) as http:
        while True:
            try:
                r = run_once(database, settings, http, sweep=sweep)
            except Exception as exc:  # a busy or unreachable database: try again later
                if once:
                    raise
                log.warning("notification_round_failed", error_type=type(exc).__name__)
                time.sleep(settings.notify_poll_seconds)
                continue
            total.delivered += r.delivered
            total.retried += r.retried
            total.failed += r.failed
            total.claimed += r.claimed
            total.ids.extend(r.ids)
            if once:
                return total
            if r.claimed == 0:
                time.sleep(settings.notify_poll_seconds)
