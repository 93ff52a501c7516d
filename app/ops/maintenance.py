"""Background upkeep of one process, off the request path: every ``interval`` seconds it

- seals pending audit events: the reads' events are chained in batches, with a try-lock
  on PostgreSQL so that several processes never queue for the chain behind each other
  (``app.audit.chain.seal_pending``);
- checkpoints SQLite's write-ahead log. The app's SQLite connections raise the automatic
  checkpoint threshold (``DatabaseLimits.sqlite_background_checkpoint``), so that a
  request does not pay for copying the log into the database in its commit; a passive
  checkpoint here does it instead, without blocking readers or writers;
- refreshes SQLite's planner statistics (a sampled ``ANALYZE``) at start and every ten
  minutes. Without them SQLite picks indexes by guesswork, and picked a status index over
  the incident index for the queue's overdue counts, ten times slower. (PostgreSQL's
  autovacuum keeps its own statistics.)

One daemon thread; ``stop`` runs a last round at a graceful shutdown. Rounds never wait
for the chain's lock (another process or transaction holding it is sealing, or will
release it soon); pending events are committed rows, so a round skipped is never an event
lost. A failed round is logged (by type only) and retried at the next tick.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from datetime import timedelta
from typing import Any

import structlog

from app.audit.chain import SEAL_BATCH, pending_status, seal_pending
from app.auth.sessions import any_ended, purge_expired
from app.db import Database

log = structlog.get_logger(__name__)


# Seconds between refreshes of SQLite's planner statistics; rows sampled per index.
ANALYZE_EVERY_SECONDS = 600.0
ANALYZE_SAMPLE_ROWS = 1000


# Seconds between removals of ended screen sessions.
PURGE_SESSIONS_EVERY_SECONDS = 300.0


class Maintenance:
    def __init__(
        self, database: Database, interval: float, session_idle: timedelta | None = None
    ) -> None:
        self.database = database
        self.interval = interval
        self.session_idle = session_idle or timedelta(minutes=30)
        self._purged_at: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._analyzed_at: float | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="triage-maintenance", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=self.interval + 10)
        self.run_once(wait=False, final=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.run_once(wait=False)

    def run_once(self, *, wait: bool, final: bool = False) -> int:
        """One round; returns how many audit events were sealed."""
        try:
            sealed = self._seal(wait=wait)
            if not final:
                self._purge_sessions_when_due()
            if self.database.sqlite:
                self._checkpoint()
                if not final:
                    self._analyze_when_due()
            return sealed
        except Exception as exc:  # the next round retries; never kill the thread
            log.warning("maintenance_failed", error_type=type(exc).__name__)
            return 0

    def _seal(self, *, wait: bool) -> int:
        with self.database.unit(read_only=True) as session:
            if pending_status(session).count == 0:
                return 0  # nothing waiting: no write lock taken
        total = 0
        while True:
            # A transaction per batch keeps the chain's lock held briefly.
            with self.database.unit() as session:
                sealed = seal_pending(session, wait=wait)
            total += sealed
            if sealed < SEAL_BATCH:
                return total

    def _purge_sessions_when_due(self) -> None:
        now = time.monotonic()
        if self._purged_at is not None and now - self._purged_at < PURGE_SESSIONS_EVERY_SECONDS:
            return
        self._purged_at = now
        with self.database.unit(read_only=True) as session:
            if not any_ended(session, idle=self.session_idle):
                return  # nothing to remove: no write lock taken
        with self.database.unit() as session:
            removed = purge_expired(session, idle=self.session_idle)
        if removed:
            log.info("screen_sessions_purged", count=removed)

    def _analyze_when_due(self) -> None:
        now = time.monotonic()
        if self._analyzed_at is not None and now - self._analyzed_at < ANALYZE_EVERY_SECONDS:
            return
        self._analyzed_at = now  # a busy database is tried again next time, not every second
        with self.database.engine.connect() as conn:
            driver: Any = conn.connection.driver_connection
            # Never queue behind writers for this: give up at once if the database is busy.
            driver.execute("PRAGMA busy_timeout=0")
            try:
                driver.execute(f"PRAGMA analysis_limit={ANALYZE_SAMPLE_ROWS}")
                driver.execute("ANALYZE")
            except sqlite3.OperationalError:  # busy: the next round after ten minutes
                log.info("statistics_not_refreshed_database_busy")
            finally:
                driver.execute(f"PRAGMA busy_timeout={self.database.limits.sqlite_busy_timeout_ms}")

    def _checkpoint(self) -> None:
        with self.database.engine.connect() as conn:
            # Outside a transaction: our BEGIN hook only runs for statements that begin one.
            conn.connection.driver_connection.execute(  # type: ignore[union-attr]
                "PRAGMA wal_checkpoint(PASSIVE)"
            )
