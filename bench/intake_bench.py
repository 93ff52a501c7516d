"""Intake latency with and without the scoring step, in one run (medians; 2-core noisy box).

Posts N distinct copies of the contract's example incident (invented data) through the
app in process, on a throwaway SQLite file (or PostgreSQL with --postgres URL), in two
interleaved variants:

- ``with scoring``: the real intake (validate, store, score, flags, audit);
- ``without scoring``: the same request with the scoring engine and the flag engine
  replaced by their precomputed outputs for the same incident, so everything else
  (validation, storage of incident, assessment and flags, audit chain) is identical.

The ratio of the medians is the cost of scoring as a client sees it.

    .venv/bin/python bench/intake_bench.py [--n 200] [--postgres postgresql+psycopg://...]
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from unittest import mock

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from app.assessments import pipeline as assessment_pipeline
from app.auth.keys import create_key
from app.config import Settings
from app.db import Database
from app.intake import orchestrator
from app.main import create_app
from app.ops.migrations import upgrade_to_head

EXAMPLE = Path(__file__).resolve().parent.parent / "tests" / "data" / "incident.example.json"


@contextmanager
def database(postgres: str | None) -> Any:
    if postgres is None:
        with tempfile.TemporaryDirectory() as tmp:
            url = f"sqlite:///{tmp}/bench.db"
            upgrade_to_head(url)
            db = Database(url)
            yield db
            db.dispose()
        return
    name = f"intake_bench_{uuid.uuid4().hex[:8]}"
    admin = create_engine(postgres, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade_to_head(url)
        db = Database(url)
        yield db
        db.dispose()
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def precomputed(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Wrap an engine so that it computes once, then returns the same output."""
    cache: dict[str, Any] = {}

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if "out" not in cache:
            cache["out"] = fn(*args, **kwargs)
        return cache["out"]

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--postgres")
    args = parser.parse_args()
    example = json.loads(EXAMPLE.read_text("utf-8"))
    with database(args.postgres) as db:
        with db.session() as s:
            key = create_key(s, role="submitter", source_system="force-a-records")
            s.commit()
        settings = Settings(
            environment="test", database_url=db.url, write_rate_per_minute=0, log_level="WARNING"
        )
        client = TestClient(create_app(settings, db))
        headers = {"Authorization": f"Bearer {key.secret}"}
        fixed_assess = precomputed(assessment_pipeline.assess)
        fixed_flags = precomputed(orchestrator.evaluate_flags)
        timings: dict[str, list[float]] = {"with scoring": [], "without scoring": []}
        for i in range(2 * args.n + 20):
            body = copy.deepcopy(example)
            body["source"]["reference"] = f"BENCH-{i:06d}"
            variant = "with scoring" if i % 2 == 0 else "without scoring"
            patches = (
                []
                if variant == "with scoring"
                else [
                    mock.patch.object(assessment_pipeline, "assess", fixed_assess),
                    mock.patch.object(orchestrator, "evaluate_flags", fixed_flags),
                ]
            )
            for p in patches:
                p.start()
            start = time.perf_counter()
            r = client.post("/v1/incidents", json=body, headers=headers)
            elapsed = time.perf_counter() - start
            for p in patches:
                p.stop()
            assert r.status_code == 201, r.text
            if i >= 20:  # warm-up excluded
                timings[variant].append(elapsed * 1000)
    backend = "PostgreSQL" if args.postgres else "SQLite"
    print(f"intake latency, {backend}, {args.n} requests per variant (ms)")
    medians = {}
    for variant, values in timings.items():
        values.sort()
        medians[variant] = statistics.median(values)
        p95 = values[int(0.95 * (len(values) - 1))]
        print(f"  {variant:<16} median {medians[variant]:7.2f}  p95 {p95:7.2f}")
    ratio = medians["with scoring"] / medians["without scoring"]
    print(f"  ratio with/without scoring (medians): {ratio:.3f}")


if __name__ == "__main__":
    main()
