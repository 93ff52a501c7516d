"""``triage idempotency purge``: delete stored replay results past their expiry.

Keys are kept at least 7 days (``TRIAGE_IDEMPOTENCY_RETENTION_DAYS``); an expired key is
also ignored (and removed) when it is next presented, so purging is housekeeping only.
Run it daily from the scheduler that runs the service.
"""

from __future__ import annotations

import argparse
from typing import Any

from app.config import get_settings
from app.db import Database
from app.idempotency.service import purge_expired


def register(sub: Any) -> None:
    idem = sub.add_parser("idempotency", help="idempotency-key housekeeping")
    isub = idem.add_subparsers(dest="idempotency_command", required=True)
    purge = isub.add_parser("purge", help="delete expired stored results")
    purge.set_defaults(func=_purge)


def _purge(_: argparse.Namespace) -> int:
    db = Database(get_settings().effective_database_url)
    with db.session() as s:
        removed = purge_expired(s)
        s.commit()
    db.dispose()
    print(f"removed {removed} expired idempotency key(s)")
    return 0
