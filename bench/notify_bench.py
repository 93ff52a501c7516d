"""Notifications: deliveries per second, and the time from intake commit to delivery.

On a throwaway SQLite file, or a PostgreSQL database of its own (created on the server of
``--database-url`` and dropped afterwards), with a local receiver that verifies every
Standard Webhooks signature (tests/notify/receiver.py, a threaded ``http.server`` closing
each connection after its request, in a process of its own):

1. **Drain**: ``--notifications`` due notifications (written with the real outbox code for
   flags of a few intakes) delivered by the dispatcher's rounds (``run_once`` until nothing
   is claimed: claim a batch, POST each, record each outcome with its audit event), against
   a same-run baseline: the same signed POSTs (``dispatcher.send``, the same bodies and
   client) without the database. The ratio of the rates is the database's share of a
   delivery. ``--repeats`` pairs, interleaved; medians.
2. **Latency**: a real ``triage notify run`` process (``notify_poll_seconds`` from
   ``--polls``) while intakes are posted through the app (TestClient) at ``--rate`` per
   second for ``--seconds``: for each ``flag.raised`` notification, the receiver's arrival
   time minus the time the intake's 201 came back (after its commit), and minus the
   notification's ``created_at`` (the intake's clock, inside its transaction).

    .venv/bin/python bench/notify_bench.py                    # SQLite
    .venv/bin/python bench/notify_bench.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Prints a table and writes JSON to bench/out/notify_bench_<database>.json. The machine is
shared: compare the ratio, not the absolute figures.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# This checkout's app and tests, before any other install of the package in the venv.
sys.path.insert(0, str(ROOT))

import argparse  # noqa: E402
import contextlib  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import logging  # noqa: E402
import multiprocessing  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import signal  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402
import uuid  # noqa: E402
from collections.abc import Iterator  # noqa: E402
from multiprocessing.connection import Connection  # noqa: E402
from typing import Any  # noqa: E402

import httpx  # noqa: E402
import orjson  # noqa: E402
from fastapi.testclient import TestClient  # noqa: E402
from intake_bench import database  # noqa: E402 - bench/, beside this script
from sqlalchemy import select  # noqa: E402

from app.auth.keys import create_key  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import Database, utcnow  # noqa: E402
from app.flags.models import Flag  # noqa: E402
from app.logging import configure_logging  # noqa: E402
from app.main import create_app  # noqa: E402
from app.notify import dispatcher, repository  # noqa: E402
from app.notify.models import Notification  # noqa: E402
from app.notify.outbox import enqueue  # noqa: E402
from app.notify.service import create_subscription  # noqa: E402
from tests.flags.api_helpers import incident_at  # noqa: E402
from tests.notify.receiver import Receiver, free_port  # noqa: E402

OUT = ROOT / "bench" / "out"


class ReceiverProcess:
    """tests/notify/receiver.py in a process of its own (as an agency's would be, and off
    this process's interpreter lock), asked for its arrivals over a pipe."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.secret: str | None = None

    def start(self, secret: str) -> None:
        self.secret = secret
        context = multiprocessing.get_context("fork")  # before any thread of this one
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_serve, args=(self.port, secret, child))
        self._process.start()
        assert self._conn.recv() == "ready"

    def arrivals(self) -> dict[str, float]:
        """webhook-id -> first arrival time (time.time())."""
        self._conn.send("arrivals")
        first: dict[str, float] = {}
        for webhook_id, at in self._conn.recv():
            first.setdefault(webhook_id, at)
        return first

    def stop(self) -> None:
        if getattr(self, "_process", None) is not None:
            self._conn.send("stop")
            self._process.join(10)


def _serve(port: int, secret: str, conn: Connection) -> None:
    receiver = Receiver(port)
    receiver.secret = secret
    receiver.start()
    conn.send("ready")
    while (command := conn.recv()) != "stop":
        assert command == "arrivals"
        conn.send(receiver.arrivals())
    receiver.stop()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def now_iso() -> str:
    return dt.datetime.now(dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


# --------------------------------------------------------------------------- set-up


class Bench:
    def __init__(self, db: Database, receiver: ReceiverProcess, args: argparse.Namespace) -> None:
        self.db = db
        self.receiver = receiver
        self.settings = Settings(
            environment="test",
            database_url=db.url,
            write_rate_per_minute=0,
            log_level="WARNING",
            notify_batch_size=args.batch,
        )
        with db.unit() as s:
            created = create_subscription(
                s,
                self.settings,
                agency="csc",
                url=receiver.url,
                area=None,
                school_urn=None,
                label="bench",
                created_by="bench",
            )
            key = create_key(s, role="submitter", source_system="force-a-records")
        receiver.start(created.secret)
        self.headers = {"Authorization": f"Bearer {key.secret}"}
        self.client = TestClient(create_app(self.settings, db))

    def post_incident(self) -> tuple[str, float]:
        """An intake reported now; its id and the time its 201 came back."""
        r = self.client.post("/v1/incidents", json=incident_at(now_iso()), headers=self.headers)
        done = time.time()
        assert r.status_code == 201, r.text
        return str(r.json()["incident_id"]), done

    def backlog(self, n: int) -> int:
        """At least ``n`` due notifications (``raised``, for the csc flags of a few intakes,
        written by the outbox as an intake would); returns how many are due."""
        with self.db.unit(read_only=True) as s:
            flags = list(s.scalars(select(Flag).where(Flag.agency == "csc").limit(50)))
        if not flags:
            for _ in range(5):
                self.post_incident()
            return self.backlog(n)
        due = self.pending()
        with self.db.unit() as s:
            while due < n:
                due += enqueue(s, flags, "raised", utcnow())
        return self.pending()

    def pending(self) -> int:
        with self.db.unit(read_only=True) as s:
            return repository.counts_by_status(s).get("pending", 0)

    def bodies(self, n: int) -> list[bytes]:
        with self.db.unit(read_only=True) as s:
            return [orjson.dumps(p) for p in s.scalars(select(Notification.payload).limit(n))]


# --------------------------------------------------------------------------- 1. drain


def drain(bench: Bench, http: httpx.Client) -> tuple[int, float]:
    """The dispatcher's rounds until nothing is due: (delivered, seconds)."""
    start = time.perf_counter()
    delivered = 0
    while True:
        r = dispatcher.run_once(bench.db, bench.settings, http)
        delivered += r.delivered
        assert r.retried == r.failed == 0, r
        if r.claimed == 0:
            return delivered, time.perf_counter() - start


def baseline(bench: Bench, http: httpx.Client, bodies: list[bytes]) -> float:
    """The same signed POSTs without the database: seconds."""
    assert bench.receiver.secret is not None
    items = [
        dispatcher._Claimed(  # the dispatcher's own item, so that send() is the same code
            id=uuid.uuid4(),
            flag_id=uuid.uuid4(),
            agency="csc",
            url=bench.receiver.url,
            secret=bench.receiver.secret,
            body=body,
            attempts=0,
        )
        for body in bodies
    ]
    start = time.perf_counter()
    for item in items:
        assert dispatcher.send(item, http) is None
    return time.perf_counter() - start


def measure_drain(bench: Bench, n: int, repeats: int) -> dict[str, Any]:
    # The dispatcher logs each attempt at INFO: formatted as in production, written nowhere.
    configure_logging(json_logs=True, level="INFO")
    devnull = open(os.devnull, "w")  # noqa: SIM115 - for the whole measurement
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    dispatcher_rates, baseline_rates = [], []
    with httpx.Client(
        timeout=bench.settings.notify_timeout_seconds, follow_redirects=False
    ) as http:
        for i in range(repeats):
            due = bench.backlog(n)
            bodies = bench.bodies(due)
            pair = ["baseline", "dispatcher"] if i % 2 == 0 else ["dispatcher", "baseline"]
            for which in pair:
                if which == "baseline":
                    baseline_rates.append(len(bodies) / baseline(bench, http, bodies))
                else:
                    delivered, seconds = drain(bench, http)
                    assert delivered == due, (delivered, due)
                    dispatcher_rates.append(delivered / seconds)
            print(
                f"  drain {i + 1}/{repeats}: {due} notifications, dispatcher "
                f"{dispatcher_rates[-1]:.1f}/s, baseline {baseline_rates[-1]:.1f}/s",
                flush=True,
            )
    logging.getLogger().setLevel("WARNING")
    devnull.close()
    d, b = statistics.median(dispatcher_rates), statistics.median(baseline_rates)
    return {
        "notifications": due,
        "repeats": repeats,
        "dispatcher_per_second": dispatcher_rates,
        "baseline_per_second": baseline_rates,
        "dispatcher_median": d,
        "baseline_median": b,
        "ratio": d / b,
    }


# --------------------------------------------------------------------------- 2. latency


@contextlib.contextmanager
def dispatcher_process(bench: Bench, poll: float, log: Path) -> Iterator[None]:
    """``triage notify run`` (this checkout's), until interrupted."""
    env = {
        **os.environ,
        "TRIAGE_DATABASE_URL": bench.db.url,
        "TRIAGE_ENVIRONMENT": "test",
        "TRIAGE_NOTIFY_POLL_SECONDS": str(poll),
        "TRIAGE_NOTIFY_BATCH_SIZE": str(bench.settings.notify_batch_size),
    }
    with log.open("wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "notify", "run"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield
        finally:
            process.send_signal(signal.SIGINT)
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_delivered(bench: Bench, log: Path) -> None:
    deadline = time.monotonic() + 120
    while bench.pending():
        assert time.monotonic() < deadline, f"not all delivered; see {log}"
        time.sleep(0.05)


def measure_latency(bench: Bench, poll: float, rate: float, seconds: float) -> dict[str, Any]:
    assert bench.pending() == 0
    committed: dict[uuid.UUID, float] = {}  # incident id -> its 201's time
    log = OUT / f"notify_bench_dispatcher_poll{poll}.log"
    with dispatcher_process(bench, poll, log):
        bench.post_incident()  # delivered once the process has started
        wait_delivered(bench, log)
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            time.sleep(max(0.0, start + i / rate - time.monotonic()))
            incident_id, done = bench.post_incident()
            committed[uuid.UUID(incident_id)] = done
        wait_delivered(bench, log)
    arrived = bench.receiver.arrivals()
    with bench.db.unit(read_only=True) as s:
        rows = s.execute(
            select(Notification.id, Notification.created_at, Flag.incident_id)
            .join(Flag, Flag.id == Notification.flag_id)
            .where(Notification.kind == "raised", Flag.incident_id.in_(list(committed)))
        ).all()
    from_201 = [(arrived[f"msg_{nid}"] - committed[iid]) * 1000 for nid, _c, iid in rows]
    from_created = [(arrived[f"msg_{nid}"] - c.timestamp()) * 1000 for nid, c, _i in rows]
    return {
        "poll_seconds": poll,
        "incidents": len(committed),
        "notifications": len(rows),
        "rate_per_second": rate,
        "from_201_ms": {"p50": percentile(from_201, 0.5), "p99": percentile(from_201, 0.99)},
        "from_created_at_ms": {
            "p50": percentile(from_created, 0.5),
            "p99": percentile(from_created, 0.99),
        },
    }


# --------------------------------------------------------------------------- main


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL server (default: SQLite file)")
    parser.add_argument("--notifications", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--batch", type=int, default=20, help="notify_batch_size")
    parser.add_argument("--polls", default="0.05,1", help="notify_poll_seconds to measure")
    parser.add_argument("--rate", type=float, default=4.0, help="intakes per second")
    parser.add_argument("--seconds", type=float, default=20.0, help="of intakes per poll")
    parser.add_argument("--out", type=Path, help="JSON (default bench/out/notify_bench_*.json)")
    args = parser.parse_args()
    kind = "postgresql" if args.database_url else "sqlite"
    OUT.mkdir(parents=True, exist_ok=True)
    receiver = ReceiverProcess()
    try:
        with database(args.database_url) as db:
            bench = Bench(db, receiver, args)
            print(f"notifications, {kind}: drain ({args.notifications}, batch {args.batch})")
            drained = measure_drain(bench, args.notifications, args.repeats)
            latencies = []
            for poll in [float(p) for p in args.polls.split(",")]:
                print(f"  latency, poll {poll} s: {args.rate}/s intakes for {args.seconds} s")
                latencies.append(measure_latency(bench, poll, args.rate, args.seconds))
            with db.unit(read_only=True) as s:
                statuses = repository.counts_by_status(s)
    finally:
        receiver.stop()
    print(f"\n{kind}, one run, {platform.node()} ({os.cpu_count()} cores)")
    print("| measure | dispatcher | baseline (POSTs alone) | ratio |")
    print("|---|---|---|---|")
    print(
        f"| delivered/s, {drained['notifications']} due, median of {args.repeats} "
        f"| {drained['dispatcher_median']:.1f} | {drained['baseline_median']:.1f} "
        f"| {drained['ratio']:.2f} |"
    )
    print(
        "\n| poll s | notifications | 201 → delivery p50 / p99 ms "
        "| created_at → delivery p50 / p99 ms |"
    )
    print("|---|---|---|---|")
    for lat in latencies:
        a, b = lat["from_201_ms"], lat["from_created_at_ms"]
        print(
            f"| {lat['poll_seconds']} | {lat['notifications']} | {a['p50']:.0f} / {a['p99']:.0f} "
            f"| {b['p50']:.0f} / {b['p99']:.0f} |"
        )
    result = {
        "database": kind,
        "date": now_iso(),
        "machine": {"node": platform.node(), "cpus": os.cpu_count()},
        "batch": args.batch,
        "drain": drained,
        "latency": latencies,
        "final_statuses": statuses,
    }
    path = args.out or OUT / f"notify_bench_{kind}.json"
    path.write_text(json.dumps(result, indent=2) + "\n", "utf-8")
    print(f"\nwrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
