"""Intake throughput against a bare store of the same JSON, in one run (wrk, loopback).

For each database (SQLite file, PostgreSQL) and each number of workers, starts two servers
on fresh databases (N workers are N uvicorn processes on one port through SO_REUSEPORT,
as N replicas behind a balancer; see bench/reuseport_server.py for why not
``uvicorn --workers``):

- the service (``app.main:create_app``), with a submitter key and no write rate limit;
- the baseline (``bench/bare_store.py``): a FastAPI ``def`` POST that stores the body as
  JSON in one row with SQLAlchemy Core, in the same kind of database;

then drives both with wrk (one thread, each connection count in turn, the two servers
alternated) using the contract's example incident (invented data) with a unique source
reference, PNC identifiers and family names on every request, so every intake creates
new persons as a real one would. Prints req/s, p50 and p99 of both and the ratio of
req/s; any non-2xx answer or socket error is reported (and fails the run with --strict).

    apt-get install wrk
    .venv/bin/python bench/intake_load.py                     # SQLite, 1 and 2 workers
    .venv/bin/python bench/intake_load.py --postgres postgresql+psycopg://postgres@127.0.0.1:5432/test
    .venv/bin/python bench/intake_load.py --databases postgres --workers 1 --connections 4,16 \
        --duration 20 --postgres ...

The machine is shared: compare the ratio, not the absolute figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import bare_store  # bench/, beside this script
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "tests" / "data" / "incident.example.json"
PYTHON = sys.executable

# wrk's Lua: a fresh reference, PNC ids and family names on every request (one thread,
# so a plain counter is unique; the run number keeps runs on one database apart).
LUA = r"""
local template = [==[@TEMPLATE@]==]
local run = @RUN@
local counter = 0
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer @KEY@"

local function letters(n)
  local s = ""
  repeat
    s = string.char(97 + n % 26) .. s
    n = math.floor(n / 26)
  until n == 0
  return s
end

request = function()
  counter = counter + 1
  local suffix = letters(run * 1000000 + counter)
  local body = template
    :gsub("@REF@", "LOAD-" .. run .. "-" .. counter)
    :gsub("@VPNC@", string.format("%02d/%dK", run, counter))
    :gsub("@PPNC@", string.format("%02d/%dB", run, counter))
    :gsub("@FAMILY@", suffix)
  return wrk.format(nil, "@PATH@", nil, body)
end

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'RESULT {"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"non2xx": %d, "connect": %d, "read": %d, "write": %d, "timeout": %d}\n',
    summary.requests, summary.duration, latency:percentile(50), latency:percentile(99),
    e.status, e.connect, e.read, e.write, e.timeout))
end
"""


@dataclass(frozen=True)
class Result:
    rps: float
    p50_ms: float
    p99_ms: float
    failures: int


def template_body() -> str:
    """The example incident with placeholders for what must be unique per request."""
    incident = json.loads(EXAMPLE.read_text("utf-8"))
    incident["source"]["reference"] = "@REF@"
    for person in incident["persons"]:
        if person.get("name", {}).get("family"):
            person["name"]["family"] += "@FAMILY@"
        for identifier in person.get("identifiers", []):
            if identifier["scheme"] == "pnc":
                identifier["value"] = "@VPNC@" if person["role"] == "victim" else "@PPNC@"
    return json.dumps(incident)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def fresh_database(kind: str, postgres: str | None, tmp: Path, name: str) -> Iterator[str]:
    if kind == "sqlite":
        yield f"sqlite:///{tmp / (name + '.db')}"
        return
    assert postgres is not None
    db = f"{name}_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{db}"'))
    try:
        yield make_url(postgres).set(database=db).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
        admin.dispose()


def listening(port: int) -> int:
    """How many sockets listen on ``port`` (Linux: /proc/net/tcp, state 0A)."""
    with open("/proc/net/tcp", encoding="ascii") as f:
        rows = [line.split() for line in f.readlines()[1:]]
    return sum(1 for r in rows if r[1].endswith(f":{port:04X}") and r[3] == "0A")


@contextlib.contextmanager
def server(args: list[str], env: dict[str, str], port: int, processes: int) -> Iterator[None]:
    """``processes`` uvicorn processes sharing ``port`` through SO_REUSEPORT, so the
    kernel spreads connections evenly (see bench/reuseport_server.py)."""
    procs = [
        subprocess.Popen(  # noqa: S603 - our own interpreter and arguments
            [PYTHON, str(ROOT / "bench" / "reuseport_server.py"), *args, "--port", str(port)],
            cwd=ROOT,
            env={**os.environ, **env},
            start_new_session=True,
        )
        for _ in range(processes)
    ]
    try:
        deadline = time.monotonic() + 60
        while listening(port) < processes:
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                raise RuntimeError("server did not start")
            time.sleep(0.2)
        yield
    finally:
        for proc in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def drive(port: int, path: str, key: str, run: int, connections: int, seconds: int) -> Result:
    script = (
        LUA.replace("@TEMPLATE@", template_body())
        .replace("@RUN@", str(run))
        .replace("@KEY@", key)
        .replace("@PATH@", path)
    )
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as f:
        f.write(script)
    try:
        out = subprocess.run(  # noqa: S603
            ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--timeout", "60s",  # noqa: S607
             "-s", f.name, f"http://127.0.0.1:{port}"],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    finally:
        os.unlink(f.name)
    line = next(x for x in out.splitlines() if x.startswith("RESULT "))
    r = json.loads(line.removeprefix("RESULT "))
    failures = r["non2xx"] + r["connect"] + r["read"] + r["write"] + r["timeout"]
    return Result(
        rps=r["requests"] / (r["duration_us"] / 1e6),
        p50_ms=r["p50_us"] / 1000,
        p99_ms=r["p99_us"] / 1000,
        failures=failures,
    )


def submitter_key(url: str) -> str:
    env = {**os.environ, "TRIAGE_DATABASE_URL": url, "TRIAGE_ENVIRONMENT": "test"}
    subprocess.run([PYTHON, "-m", "app.cli", "db", "upgrade"], cwd=ROOT, env=env, check=True,  # noqa: S603
                   capture_output=True)  # fmt: skip
    out = subprocess.run(  # noqa: S603
        [PYTHON, "-m", "app.cli", "keys", "create", "--role", "submitter",
         "--source-system", "force-a-records", "--label", "load benchmark"],
        cwd=ROOT, env=env, check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return next(w for w in out.split() if w.startswith("tri_"))


def measure(
    kind: str, postgres: str | None, workers: int, connections: list[int], seconds: int
) -> list[tuple[int, Result, Result]]:
    rows = []
    with (
        tempfile.TemporaryDirectory() as tmp_dir,
        fresh_database(kind, postgres, Path(tmp_dir), "load_service") as service_url,
        fresh_database(kind, postgres, Path(tmp_dir), "load_bare") as bare_url,
    ):
        key = submitter_key(service_url)
        bare_store.create_schema(bare_url)
        service_port, bare_port = free_port(), free_port()
        service_env = {
            "TRIAGE_ENVIRONMENT": "test",
            "TRIAGE_DATABASE_URL": service_url,
            "TRIAGE_WRITE_RATE_PER_MINUTE": "0",
            "TRIAGE_LOG_LEVEL": "WARNING",
        }
        with (
            server(["app.main:create_app", "--factory"], service_env, service_port, workers),
            server(["--app-dir", "bench", "bare_store:create_app", "--factory"],
                   {"BARE_DATABASE_URL": bare_url}, bare_port, workers),
        ):  # fmt: skip
            # Warm-up: imports, pools, first pages of every table.
            drive(service_port, "/v1/incidents", key, 1, 4, 3)
            drive(bare_port, "/store", key, 1, 4, 3)
            for i, c in enumerate(connections):
                full = drive(service_port, "/v1/incidents", key, 10 + i, c, seconds)
                bare = drive(bare_port, "/store", key, 10 + i, c, seconds)
                rows.append((c, full, bare))
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--postgres", default=os.environ.get("TRIAGE_TEST_POSTGRES_URL"))
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--connections", default="4,16,64")
    parser.add_argument("--duration", type=int, default=20, help="seconds per wrk run")
    parser.add_argument("--strict", action="store_true", help="exit 1 on any failed request")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    kinds = [k for k in args.databases.split(",") if k]
    if "postgres" in kinds and not args.postgres:
        print("no --postgres URL (or TRIAGE_TEST_POSTGRES_URL): PostgreSQL skipped")
        kinds.remove("postgres")
    connections = [int(c) for c in args.connections.split(",")]
    failed = 0
    print(f"wrk -t1, {args.duration} s per run; intake vs bare store of the same JSON")
    header = (
        f"{'database':<10} {'workers':>7} {'conns':>5} | {'intake req/s':>12} {'p50 ms':>8} "
        f"{'p99 ms':>8} | {'bare req/s':>10} {'p50 ms':>7} {'p99 ms':>7} | {'ratio':>5} | fails"
    )
    print(header)
    print("-" * len(header))
    for kind in kinds:
        for workers in (int(w) for w in args.workers.split(",")):
            for c, full, bare in measure(kind, args.postgres, workers, connections, args.duration):
                failed += full.failures + bare.failures
                print(
                    f"{kind:<10} {workers:>7} {c:>5} | {full.rps:>12.1f} {full.p50_ms:>8.1f} "
                    f"{full.p99_ms:>8.1f} | {bare.rps:>10.1f} {bare.p50_ms:>7.1f} "
                    f"{bare.p99_ms:>7.1f} | {full.rps / bare.rps:>5.2f} | "
                    f"{full.failures}/{bare.failures}",
                    flush=True,
                )
    return 1 if failed and args.strict else 0


if __name__ == "__main__":
    sys.exit(main())
