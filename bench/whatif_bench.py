"""What-if over a million stored incidents (PostgreSQL): `triage rescore`'s path, timed.

Builds a throwaway database migrated to head. A few hundred varied synthetic incidents
(``triage synth``'s generator, invented data) are scored by the engine exactly as intake
stores them (inputs = incident, reported history, no judgements) and kept as templates;
the server then replicates them with ``INSERT … SELECT … generate_series`` into
``--incidents`` incidents of one area, each with one assessment whose ``inputs`` is its
template's (ids, references and times vary per row). The ``result`` column is left empty:
the what-if never reads it, and leaving it out keeps the load to minutes.

Then, in the same run:

1. baseline: stream every incident's stored inputs (the same query, server-side cursor and
   batches) without scoring them;
2. the what-if of a draft ``dash-ric`` raising the high band from 14 to 15 (and the
   visible-high-risk MARAC criterion with it), with ``--workers`` processes, through
   :func:`app.reports.whatif_cli.rescore_area` (what ``triage rescore`` runs), with a
   progress bar on a terminal.

Prints wall times, rates, the load average and the (suppressed) report; target (issue 15):
1,000,000 incidents in at most 120 s on this 2-core machine. Drops the database at the end.

    .venv/bin/python bench/whatif_bench.py [--incidents 1000000] [--templates 300]
        [--workers 2] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import secrets
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson
from sqlalchemy import create_engine, make_url, text

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.classifier.synth import generate  # noqa: E402
from app.config import Settings  # noqa: E402
from app.contract.incident import Incident  # noqa: E402
from app.db import Database  # noqa: E402
from app.intake.context import ScoringContext  # noqa: E402
from app.ops.migrations import upgrade_to_head  # noqa: E402
from app.reports.whatif import ScenarioSpec, parse_draft, report  # noqa: E402
from app.reports.whatif_cli import BATCH, rescore_area  # noqa: E402
from app.reports.whatif_repository import Scope, stream_inputs  # noqa: E402
from app.scoring.history import History  # noqa: E402

AREA = "E09000018"
TARGET_SECONDS = 120


@contextmanager
def fresh_database(postgres_url: str) -> Iterator[str]:
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"whatif_bench_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        print(f"dropped database {name}")


def templates(n: int) -> list[str]:
    """Stored inputs of ``n`` varied synthetic incidents, as intake stores them."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synth.jsonl"
        generate(n, 15, path)
        lines = path.read_text("utf-8").splitlines()
    out = []
    for line in lines:
        incident = Incident.model_validate(json.loads(line)["incident"])
        inputs = {
            "incident": incident.model_dump(mode="json"),
            "history": History.reported(incident).to_dict(),
            "judgements": [],
        }
        out.append(orjson.dumps(inputs).decode())
    return out


SEED = [
    "CREATE TEMP TABLE template (n int PRIMARY KEY, inputs jsonb NOT NULL)",
    None,  # the templates, inserted from Python
    "ALTER TABLE assessments DROP CONSTRAINT IF EXISTS fk_assessments_incident_id_incidents",
    """
    INSERT INTO incidents (id, source_system, source_reference, area, occurred_at,
        reported_at, received_at, updated_at, created_by, version, original_sha256)
    SELECT md5('incident' || g)::uuid, 'bench', 'B-' || g, :area,
        now() - (g % 700) * interval '1 day', now() - (g % 700) * interval '1 day',
        now(), now(), 'bench', 1, md5(g::text) || md5(g::text)
    FROM generate_series(1, :n) AS g
    """,
    """
    INSERT INTO assessments (id, incident_id, version, trigger, created_at, created_by,
        submission_revision, inputs, result, victim_level, risk_rank, marac_refer,
        victim_checklist_id, victim_checklist_version, victim_checklist_sha256,
        child_checklist_id, child_checklist_version, child_checklist_sha256)
    SELECT md5('assessment' || g)::uuid, md5('incident' || g)::uuid, 1, 'intake', now(),
        'bench', 1, t.inputs, NULL, 'standard', 0, false,
        'dash-ric', '2', repeat('0', 64), 'child-risk', '2', repeat('0', 64)
    FROM generate_series(1, :n) AS g JOIN template AS t ON t.n = g % :templates
    """,
    "ANALYZE incidents",
    "ANALYZE assessments",
]


def seed(url: str, inputs: list[str], n: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for step in SEED:
            started = time.perf_counter()
            if step is None:
                conn.execute(
                    text("INSERT INTO template (n, inputs) VALUES (:n, CAST(:inputs AS jsonb))"),
                    [{"n": i, "inputs": s} for i, s in enumerate(inputs)],
                )
                continue
            conn.execute(text(step), {"area": AREA, "n": n, "templates": len(inputs)})
            print(f"  {' '.join(step.split())[:60]}…  {time.perf_counter() - started:.1f} s")
    with engine.connect() as conn:
        size = conn.exec_driver_sql("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"  database size {size.scalar_one()}")
    engine.dispose()


def draft_document(context: ScoringContext) -> dict[str, object]:
    document = copy.deepcopy(context.definition_set(AREA).victim_checklist("dash-ric").document())
    document["version"] = "bench-draft"
    document["thresholds"]["high_from"] = 15  # type: ignore[index]
    document["marac"]["visible_high_risk"]["score_from"] = 15  # type: ignore[index]
    return document


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--templates", type=int, default=300)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 2)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TRIAGE_BENCH_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
        ),
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}")
    print(f"scoring {args.templates} synthetic templates …")
    inputs = templates(args.templates)
    with fresh_database(args.postgres_url) as url:
        upgrade_to_head(url)
        print(f"seeding {args.incidents:,} incidents with assessments …")
        seed(url, inputs, args.incidents)
        database = Database(url)
        scope = Scope(AREA)
        started = time.perf_counter()
        rows = 0
        with database.engine.connect() as connection:
            for batch in stream_inputs(connection, scope, BATCH):
                rows += len(batch)
        baseline = time.perf_counter() - started
        print(f"baseline: streamed {rows:,} inputs in {baseline:.1f} s ({rows / baseline:,.0f}/s)")
        context = ScoringContext.load(Settings(environment="test", database_url=url))
        draft = parse_draft(draft_document(context))
        spec = ScenarioSpec.for_area(context, AREA, draft)
        tally, seconds = rescore_area(database, spec, scope, args.workers)
        load = os.getloadavg()[0]
        database.dispose()
        body = report(tally, draft=draft, area=AREA, seconds=seconds)
        print(json.dumps({k: body[k] for k in ("incidents", "failed", "victims")}, indent=1))
        print(
            f"what-if: re-scored {tally.incidents:,} incidents ({tally.failed} failed) in "
            f"{seconds:.1f} s ({tally.incidents / seconds:,.0f}/s) with {args.workers} workers; "
            f"streaming alone {baseline:.1f} s; load average (1 min) at the end {load:.2f}"
        )
        verdict = "MET" if seconds <= TARGET_SECONDS * args.incidents / 1_000_000 else "NOT MET"
        print(f"target {TARGET_SECONDS} s per 1,000,000: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
