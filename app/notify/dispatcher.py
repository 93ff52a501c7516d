"""Delivering the outbox: ``triage notify run``, a process of its own.

Each round claims a batch of due notifications in one short unit of work (row locks with
``SKIP LOCKED`` on PostgreSQL, so several dispatchers never claim the same row; on SQLite
one dispatcher) and leases them, then sends each one outside any transaction by its
subscription's channel (:mod:`app.notify.channels`): a webhook POST signed per Standard
Webhooks (``webhook-id`` is the notification id, so a receiver can deduplicate), or an
email (its ``Message-ID`` made from the notification id). A 2xx, or the SMTP server's
acceptance, is ``delivered`` (with a ``disclose`` audit event to the agency, naming the
flag and the channel, at the time it was sent); anything else is retried with exponential
backoff and full jitter until ``notify_max_attempts``, then ``failed`` (the dead letter).
Outcomes are recorded together, in one unit of work per batch (or sooner, once the oldest
unrecorded one is ``RECORD_WITHIN`` old): a commit, and on PostgreSQL a turn of the audit
chain's lock, per batch rather than per notification. Delivery is at least once: a
dispatcher that dies between sending and recording leaves those rows (at most a batch) to
be sent again, with the same ``webhook-id``, when its lease runs out.
"""

from __future__ import annotations

import datetime as dt
import random
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import structlog

from app.audit.chain import AuditEntry, append_all, digest_of
from app.config import Settings
from app.db import Database, utcnow
from app.notify import channels, repository
from app.notify.channels import Delivery
from app.notify.models import Notification, Subscription
from app.notify.outbox import as_sent
from app.notify.secrets import unseal

log = structlog.get_logger(__name__)

ACTOR = "system:notify"
# Outcomes wait at most about this long (plus one POST) to be recorded.
RECORD_WITHIN = dt.timedelta(seconds=1)


@dataclass
class Round:
    """What one round did (for tests, logs and the counters)."""

    delivered: int = 0
    retried: int = 0
    failed: int = 0
    claimed: int = 0
    ids: list[uuid.UUID] = field(default_factory=list)

    def count(self, notification_id: uuid.UUID, outcome: str) -> None:
        if outcome == "delivered":
            self.delivered += 1
            self.ids.append(notification_id)
        elif outcome == "retried":
            self.retried += 1
        elif outcome == "failed":
            self.failed += 1

    def add(self, other: Round) -> None:
        self.delivered += other.delivered
        self.retried += other.retried
        self.failed += other.failed
        self.claimed += other.claimed
        self.ids.extend(other.ids)


@dataclass(frozen=True)
class _Attempt:
    item: Delivery
    error: str | None  # None: delivered
    at: dt.datetime  # when the sending ended


def backoff_seconds(settings: Settings, attempts: int) -> float:
    """Full jitter: uniform in [0, min(max, base·2^(attempts-1))] (at least one second)."""
    cap: float = min(
        settings.notify_backoff_max_seconds,
        settings.notify_backoff_base_seconds * 2 ** max(attempts - 1, 0),
    )
    return max(random.uniform(0, cap), min(cap, 1.0))  # noqa: S311 (jitter, not a secret)


def claim(database: Database, settings: Settings, now: dt.datetime) -> list[Delivery]:
    # By default the lease outlasts the slowest possible batch, so nothing is claimed twice
    # while it is being sent (Settings.notify_lease).
    with database.unit() as session:
        rows = repository.claim_due(
            session, now, settings.notify_batch_size, now + settings.notify_lease
        )
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


def _settlement(settings: Settings, attempt: _Attempt) -> tuple[str, dict[str, Any]]:
    """An attempt's outcome (delivered, retried or failed) and the row's new values."""
    if attempt.error is None:
        values = {"status": "delivered", "delivered_at": attempt.at, "last_error_kind": None}
        return "delivered", values
    if attempt.item.attempts + 1 >= settings.notify_max_attempts:
        return "failed", {"status": "failed", "last_error_kind": attempt.error}
    wait = dt.timedelta(seconds=backoff_seconds(settings, attempt.item.attempts + 1))
    return "retried", {"next_attempt_at": attempt.at + wait, "last_error_kind": attempt.error}


def record(database: Database, settings: Settings, attempts: Sequence[_Attempt]) -> list[str]:
    """The attempts' outcomes, in one unit of work: delivered, retried or failed each (or
    lost: another dispatcher took the row), with a ``disclose`` event per delivery."""
    outcomes = []
    disclosures = []
    with database.unit() as session:
        for attempt in attempts:
            outcome, values = _settlement(settings, attempt)
            item = attempt.item
            if not repository.settle(session, item.id, item.attempts, values):
                outcome = "lost"
            elif outcome == "delivered":
                disclosures.append(
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
                        occurred_at=attempt.at,
                    )
                )
            outcomes.append(outcome)
        append_all(session, disclosures)
    return outcomes


Sweep = Callable[[Database], int]


def run_once(
    database: Database,
    settings: Settings,
    client: httpx.Client | None = None,
    *,
    sweep: Sweep | None = None,
) -> Round:
    """One round: the scheduled sweep (overdue notices, written by a layer above), then
    claim a batch, deliver it, record the outcomes (a batch at a time)."""
    result = Round()
    if sweep is not None:
        sweep(database)
    items = claim(database, settings, utcnow())
    result.claimed = len(items)
    own = client is None
    http = client or httpx.Client(timeout=settings.notify_timeout_seconds, follow_redirects=False)
    try:
        unrecorded: list[_Attempt] = []
        for n, item in enumerate(items, 1):
            error = channels.send(item, settings, http)
            unrecorded.append(_Attempt(item, error, utcnow()))
            if n < len(items) and utcnow() - unrecorded[0].at < RECORD_WITHIN:
                continue
            for attempt, outcome in zip(
                unrecorded, record(database, settings, unrecorded), strict=True
            ):
                result.count(attempt.item.id, outcome)
                log.info(
                    "notification_attempt",
                    notification_id=str(attempt.item.id),
                    outcome=outcome,
                    error_kind=attempt.error,
                )
            unrecorded = []
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
            total.add(r)
            if once:
                return total
            if r.claimed == 0:
                time.sleep(settings.notify_poll_seconds)
