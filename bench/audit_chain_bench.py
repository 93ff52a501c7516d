"""Audit hash chain throughput: appends/second with 1, 4 and 8 threads, SQLite and PostgreSQL.

Each append is its own transaction (session, append, commit), as one request would do; the
chain lock is held from the append to the commit, so throughput is bounded by one commit at a
time. Every run uses a fresh database and ends with ``verify`` (which must pass); the median
of three runs is printed, with the verify rate of the final chain.

A second table shows the same threads appending WITHOUT the chain lock (PostgreSQL: no
advisory lock; SQLite: a plain engine with deferred transactions): concurrent transactions
read the same head, and because ``seq`` = head + 1 is the primary key they fail instead of
forking the chain. With a database-assigned id instead, each failure would have been a fork.

    .venv/bin/python bench/audit_chain_bench.py [--appends 1000] [--postgres-url URL]

PostgreSQL runs only when ``--postgres-url`` or TRIAGE_TEST_POSTGRES_URL is given.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import create_engine, make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session, sessionmaker

from app.audit import AuditEntry, AuditEvent, AuditEventRecord, append, digest_of, verify
from app.audit.chain import _append_locked, _validated
from app.db import Base, Database

THREAD_COUNTS = (1, 4, 8)
RUNS = 3


def entry(n: int) -> AuditEntry:
    return AuditEntry(
        principal_id=f"key:bench-{n % 5}",
        role="submitter",
        agency="police:force-01",
        operation="collect",
        record_type="incident",
        record_ids=[f"incident-{n}", f"assessment-{n}"],
        person_ids=[f"person-{n}", f"person-{n + 1}"],
        purpose="intake",
        request_id=f"req-{n:08d}",
        route="POST /v1/incidents",
        digest=digest_of({"n": n}),
        detail={"persons": 2, "outcome": "created"},
        occurred_at=datetime.now(UTC),
    )


@contextmanager
def fresh_url(backend: str, postgres_url: str | None) -> Iterator[str]:
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as tmp:
            yield f"sqlite:///{Path(tmp) / 'bench.db'}"
        return
    assert postgres_url is not None
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"audit_bench_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def run_threads(threads: int, appends: int, one_append: Callable[[int], None]) -> float:
    """Run ``appends`` appends split over ``threads`` threads; return the elapsed seconds."""
    barrier = threading.Barrier(threads + 1)
    per_thread = appends // threads

    def worker(t: int) -> None:
        barrier.wait()
        for i in range(per_thread):
            one_append(t * per_thread + i)

    pool = [threading.Thread(target=worker, args=(t,)) for t in range(threads)]
    for thread in pool:
        thread.start()
    barrier.wait()
    start = time.perf_counter()
    for thread in pool:
        thread.join()
    return time.perf_counter() - start


def locked_run(url: str, threads: int, appends: int) -> tuple[float, float]:
    """(appends/s, verify events/s) with the real ``append``."""
    db = Database(url)
    Base.metadata.create_all(db.engine, tables=[AuditEvent.__table__, AuditEventRecord.__table__])

    def one_append(n: int) -> None:
        with db.session() as session:
            append(session, entry(n))
            session.commit()

    try:
        elapsed = run_threads(threads, appends, one_append)
        total = (appends // threads) * threads
        start = time.perf_counter()
        with db.session() as session:
            result = verify(session)
        verify_elapsed = time.perf_counter() - start
        assert result.ok, result
        assert result.head_seq == result.events_checked == total, result
        return total / elapsed, total / verify_elapsed
    finally:
        db.dispose()


def naive_run(url: str, threads: int, appends: int) -> tuple[int, int, bool]:
    """(committed, failed, chain verifies) appending WITHOUT the chain lock."""
    if url.startswith("sqlite"):
        # Deferred transactions: the head is read before the write lock is taken.
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
    else:
        engine = Database(url).engine
    Base.metadata.create_all(engine, tables=[AuditEvent.__table__, AuditEventRecord.__table__])
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    committed, failed = [0], [0]
    lock = threading.Lock()

    def one_append(n: int) -> None:
        session: Session = factory()
        try:
            _append_locked(session, _validated(entry(n)))  # no chain lock
            session.commit()
            outcome = committed
        except DBAPIError:  # duplicate seq, or SQLite "database is locked"
            session.rollback()
            outcome = failed
        finally:
            session.close()
        with lock:
            outcome[0] += 1

    try:
        run_threads(threads, appends, one_append)
        with engine.connect() as conn:
            ok = verify(conn).ok
        return committed[0], failed[0], ok
    finally:
        engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--appends", type=int, default=1000, help="appends per run")
    parser.add_argument("--postgres-url", default=os.environ.get("TRIAGE_TEST_POSTGRES_URL"))
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgres"] if args.postgres_url else [])

    print(f"audit chain append throughput ({args.appends} appends per run, median of {RUNS})")
    print(f"{'backend':<10}{'threads':>8}{'appends/s':>12}{'runs':>26}{'verify ev/s':>14}")
    for backend in backends:
        for threads in THREAD_COUNTS:
            rates, verify_rates = [], []
            for _ in range(RUNS):
                with fresh_url(backend, args.postgres_url) as url:
                    rate, verify_rate = locked_run(url, threads, args.appends)
                rates.append(rate)
                verify_rates.append(verify_rate)
            runs = " ".join(f"{r:.0f}" for r in rates)
            print(
                f"{backend:<10}{threads:>8}{statistics.median(rates):>12.0f}{runs:>26}"
                f"{statistics.median(verify_rates):>14.0f}"
            )

    print(f"\nWITHOUT the chain lock, 8 threads ({args.appends} attempts, one run)")
    print(f"{'backend':<10}{'committed':>10}{'failed':>8}{'chain verifies':>16}")
    for backend in backends:
        with fresh_url(backend, args.postgres_url) as url:
            committed, failed, ok = naive_run(url, 8, args.appends)
        print(f"{backend:<10}{committed:>10}{failed:>8}{ok!s:>16}")


if __name__ == "__main__":
    main()
