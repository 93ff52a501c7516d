"""2,000 concurrent intakes through the API, then verify the audit hash chain.

Each intake writes the incident, its assessment and flags, and (at least) one audit event,
all in one transaction, so this exercises the chain's serialised append as the service
really uses it. Runs on a throwaway SQLite file and, with --postgres, a throwaway
PostgreSQL database. Reports throughput, failures and broken links (must be 0).

    .venv/bin/python bench/audit_http_concurrency.py [--requests 2000] [--threads 8]
        [--postgres postgresql+psycopg://postgres@127.0.0.1:5432/test]
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.audit.chain import verify
from app.audit.queries import read_snapshot
from app.auth.keys import create_key
from app.config import Settings
from app.db import Database
from app.main import create_app
from app.ops.migrations import upgrade_to_head

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "incident.example.json"


def run(url: str, requests: int, threads: int) -> dict[str, Any]:
    upgrade_to_head(url)
    db = Database(url)
    with db.session() as s:
        key = create_key(s, role="submitter", source_system="force-a-records")
        s.commit()
    settings = Settings(
        environment="test", database_url=url, write_rate_per_minute=0, log_level="WARNING"
    )
    app = create_app(settings, db)
    example = json.loads(EXAMPLE.read_text("utf-8"))
    headers = {"Authorization": f"Bearer {key.secret}"}
    statuses: list[int] = []
    # No lifespan context: each request gets its own event-loop portal, so the threads'
    # requests really run concurrently in the app.
    client = TestClient(app)

    def one(i: int) -> None:
        body = copy.deepcopy(example)
        body["source"]["reference"] = f"CONC-{i:06d}"
        r = client.post("/v1/incidents", json=body, headers=headers)
        statuses.append(r.status_code)

    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        list(pool.map(one, range(requests)))
    elapsed = time.perf_counter() - start
    with read_snapshot(db.engine) as conn:
        result = verify(conn)
    db.dispose()
    return {
        "requests": requests,
        "created": statuses.count(201),
        "other": len(statuses) - statuses.count(201),
        "seconds": round(elapsed, 1),
        "per_second": round(requests / elapsed, 1),
        "events": result.events_checked,
        "chain_ok": result.ok,
        "first_broken": result.first_broken_seq,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        print("SQLite    ", run(f"sqlite:///{tmp}/conc.db", args.requests, args.threads))
    if args.postgres:
        name = f"audit_conc_{uuid.uuid4().hex[:8]}"
        admin = create_engine(args.postgres, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(args.postgres).set(database=name).render_as_string(hide_password=False)
        try:
            print("PostgreSQL", run(url, args.requests, args.threads))
        finally:
            with admin.connect() as conn:
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            admin.dispose()


if __name__ == "__main__":
    main()
