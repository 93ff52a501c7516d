"""The overdue sweep: a scheduled job (run by ``triage notify run`` before each round), not
a request, writes an ``overdue`` notification for each open flag past its due time, once
per flag, for the subscriptions that match it (app/notify/outbox.py)."""

from __future__ import annotations

import datetime as dt

from sqlalchemy.orm import Session

from app.db import Database, utcnow
from app.flags import repository
from app.notify.outbox import enqueue

SWEEP_BATCH = 500


def sweep_overdue(session: Session, now: dt.datetime, limit: int = SWEEP_BATCH) -> int:
    """Notices for up to ``limit`` newly overdue flags; returns how many were written."""
    flags = repository.overdue_unnoticed(session, now, limit)
    written = enqueue(session, flags, "overdue", now)
    repository.mark_overdue_noticed(session, [f.id for f in flags], now)
    return written


def sweep(database: Database) -> int:
    """One sweep in a unit of work of its own."""
    with database.unit() as session:
        return sweep_overdue(session, utcnow())
