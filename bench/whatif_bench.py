"""What-if over a million stored incidents (PostgreSQL): `triage rescore`'s path, timed.

Builds a throwaway database migrated to head. A few hundred varied synthetic incidents
(``triage synth``'s generator, invented data) are scored by the engine exactly as intake
stores them (inputs = incident, reported history, no judgements) and kept as templates;
the server then replicates them with ``INSERT … SELECT … generate_series`` into
``--incidents`` incidents of one area, each with one assessment whose ``inputs`` is its
template's (ids, references and times vary per row), and its ``result`` and definition
hashes as intake stores them (so the what-if can read the current side from the stored
result, as it does in service). Seeding 1,000,000 takes some 15 minutes: ``--keep`` keeps
the database and ``--reuse NAME`` runs against it again (``--seed-only`` stops after
seeding).

Then, in the same run:

1. baseline: stream every incident's row (the same query, server-side cursor and batches)
   without scoring them;
2. the what-if of a draft ``dash-ric`` moving the high band from 14 to ``--high-from``
   (default 15, which changes few incidents; 10 changes about one in eleven; the
   visible-high-risk MARAC criterion moves with it; ``--red-flag`` also changes a red-flag
   rule, so it is not a threshold-only draft), or instead a flag-rules draft
   (``--flag-rules [RULE]``: the area's rules without one rule) or a child-risk draft
   (``--child-risk [RULE]``: the area's definition without one rule), with ``--workers``
   processes, through :func:`app.reports.whatif_cli.rescore_area` (what ``triage
   rescore`` runs), with a progress bar on a terminal.

Prints wall times, rates, the load average and the (suppressed) report; target (issue 15):
1,000,000 incidents in at most 120 s on this 2-core machine. Drops the database at the end.

    .venv/bin/python bench/whatif_bench.py [--incidents 1000000] [--templates 300]
        [--workers 2] [--postgres-url URL] [--keep | --reuse NAME] [--seed-only]
        [--high-from N] [--red-flag | --flag-rules [RULE] | --child-risk [RULE]] [--no-baseline]
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

from app.assessments.facts import (  # noqa: E402
    REPORT_FACT_COLUMNS,
    RESULT_FACT_COLUMNS,
    report_facts,
    result_facts,
)
from app.assessments.pipeline import evaluate  # noqa: E402
from app.assessments.service import risk_rank  # noqa: E402
from app.classifier.synth import generate  # noqa: E402
from app.config import Settings  # noqa: E402
from app.contract.incident import Incident  # noqa: E402
from app.db import Database  # noqa: E402
from app.intake.context import ScoringContext  # noqa: E402
from app.ops.migrations import upgrade_to_head  # noqa: E402
from app.reports.whatif import ScenarioSpec, parse_draft, report  # noqa: E402
from app.reports.whatif_cli import BATCH, rescore_area  # noqa: E402
from app.reports.whatif_repository import Scope, stream_rows  # noqa: E402
from app.scoring.history import History  # noqa: E402

AREA = "E09000018"
TARGET_SECONDS = 120


@contextmanager
def bench_database(postgres_url: str, reuse: str | None, keep: bool) -> Iterator[tuple[str, bool]]:
    """A fresh database (dropped at the end unless ``keep``), or the kept one named
    ``reuse``; yields its URL and whether it still has to be seeded."""
    url = make_url(postgres_url)
    if reuse is not None:
        yield url.set(database=reuse).render_as_string(hide_password=False), False
        return
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"whatif_bench_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield url.set(database=name).render_as_string(hide_password=False), True
    finally:
        if keep:
            print(f"kept database {name} (run again with --reuse {name}; drop it when done)")
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped database {name}")
        admin.dispose()


def templates(context: ScoringContext, n: int) -> list[dict[str, object]]:
    """``n`` varied synthetic incidents as intake stores them: inputs (incident, reported
    history, no judgements), the result of :func:`app.assessments.pipeline.evaluate` under
    the area's definitions (with the flag rules' reference intake adds) and the columns that
    name those definitions by hash."""
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synth.jsonl"
        generate(n, 15, path)
        lines = path.read_text("utf-8").splitlines()
    definitions = context.definition_set(AREA)
    rules = context.rules(AREA)
    classifier = context.classifier_policy(AREA)
    out: list[dict[str, object]] = []
    for i, line in enumerate(lines):
        incident = Incident.model_validate(json.loads(line)["incident"])
        history = History.reported(incident)
        result = evaluate(incident, history, definitions, [], classifier)
        result["flag_rules"] = {"id": rules.id, "version": rules.version, "sha256": rules.sha256}
        checklist = definitions.victim_checklist(incident.victim_checklist.instrument)
        inputs = {
            "incident": incident.model_dump(mode="json"),
            "history": history.to_dict(),
            "judgements": [],
        }
        out.append(
            {
                "n": i,
                "inputs": orjson.dumps(inputs).decode(),
                "result": orjson.dumps(result).decode(),
                "victim_level": result["victim"]["level"],
                "risk_rank": risk_rank(result),
                "marac_refer": bool(result["victim"]["marac"]["refer"]),
                "vc_id": checklist.ref.id,
                "vc_version": checklist.ref.version,
                "vc_sha256": checklist.ref.sha256,
                "cc_id": definitions.child_risk.ref.id,
                "cc_version": definitions.child_risk.ref.version,
                "cc_sha256": definitions.child_risk.ref.sha256,
                "fr_sha256": rules.sha256,
                "cl_sha256": classifier.model.sha256 if classifier.model is not None else None,
                # The columns intake writes with the assessment (insert_assessment).
                **report_facts(inputs, result),
                **result_facts(result),
            }
        )
    return out


FACTS = (*REPORT_FACT_COLUMNS, *RESULT_FACT_COLUMNS)
FACT_TYPES = {"engine_version": "text", "victim_score": "int"}


def _fact_type(column: str) -> str:
    return FACT_TYPES.get(column, "int" if column.startswith("children_") else "bool")


INSERT_TEMPLATE = f"""INSERT INTO template VALUES (:n, CAST(:inputs AS jsonb),
    CAST(:result AS jsonb), :victim_level, :risk_rank, :marac_refer, :vc_id, :vc_version,
    :vc_sha256, :cc_id, :cc_version, :cc_sha256, :fr_sha256, :cl_sha256,
    {", ".join(f":{c}" for c in FACTS)})"""  # noqa: S608

SEED = [
    """CREATE TEMP TABLE template (n int PRIMARY KEY, inputs jsonb NOT NULL, result jsonb NOT NULL,
        victim_level text, risk_rank int, marac_refer bool, vc_id text, vc_version text,
        vc_sha256 text, cc_id text, cc_version text, cc_sha256 text, fr_sha256 text,
        cl_sha256 text, """
    + ", ".join(f"{c} {_fact_type(c)}" for c in FACTS)
    + ")",
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
    f"""
    INSERT INTO assessments (id, incident_id, version, trigger, created_at, created_by,
        submission_revision, inputs, result, victim_level, risk_rank, marac_refer,
        victim_checklist_id, victim_checklist_version, victim_checklist_sha256,
        child_checklist_id, child_checklist_version, child_checklist_sha256,
        flag_rules_sha256, classifier_sha256, {", ".join(FACTS)})
    SELECT md5('assessment' || g)::uuid, md5('incident' || g)::uuid, 1, 'intake', now(),
        'bench', 1, t.inputs, t.result, t.victim_level, t.risk_rank, t.marac_refer,
        t.vc_id, t.vc_version, t.vc_sha256, t.cc_id, t.cc_version, t.cc_sha256,
        t.fr_sha256, t.cl_sha256, {", ".join(f"t.{c}" for c in FACTS)}
    FROM generate_series(1, :n) AS g JOIN template AS t ON t.n = g % :templates
    """,  # noqa: S608
]


def seed(url: str, rows: list[dict[str, object]], n: int) -> None:
    engine = create_engine(url)
    with engine.begin() as conn:
        for step in SEED:
            started = time.perf_counter()
            if step is None:
                conn.execute(
                    text(INSERT_TEMPLATE),
                    rows,
                )
                continue
            conn.execute(text(step), {"area": AREA, "n": n, "templates": len(rows)})
            print(f"  {' '.join(step.split())[:60]}…  {time.perf_counter() - started:.1f} s")
    # As autovacuum leaves a table some time after a bulk insert: statistics, and the
    # visibility map that lets the latest-version lookups read the index alone.
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        started = time.perf_counter()
        conn.exec_driver_sql("VACUUM (ANALYZE) incidents, assessments")
        print(f"  VACUUM (ANALYZE) incidents, assessments…  {time.perf_counter() - started:.1f} s")
        size = conn.exec_driver_sql("SELECT pg_size_pretty(pg_database_size(current_database()))")
        print(f"  database size {size.scalar_one()}")
    engine.dispose()


OTHER_BACKENDS = (
    "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
    "AND pid <> pg_backend_pid()"
)


def backend_cpu_seconds(url: str) -> float:
    """CPU seconds (user + system) used so far by the PostgreSQL backends connected to the
    bench database (read from /proc: the server runs on this machine)."""
    engine = create_engine(url)
    with engine.connect() as conn:
        pids = conn.exec_driver_sql(OTHER_BACKENDS).scalars()
        total = 0.0
        for pid in pids:
            try:
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    engine.dispose()
    return total


def draft_document(
    context: ScoringContext, high_from: int = 15, red_flag: bool = False
) -> dict[str, object]:
    document = copy.deepcopy(context.definition_set(AREA).victim_checklist("dash-ric").document())
    document["version"] = "bench-draft"
    document["thresholds"]["high_from"] = high_from  # type: ignore[index]
    document["marac"]["visible_high_risk"]["score_from"] = high_from  # type: ignore[index]
    if red_flag:  # one critical item with one aggravating one is enough (was two)
        document["red_flag"]["aggravating_needed"] = 1  # type: ignore[index]
    return document


def child_risk_document(context: ScoringContext, without: str) -> dict[str, object]:
    """A child-risk draft: the area's current definition without the rule ``without``."""
    document = context.definition_set(AREA).child_risk.document()
    return _without_rule(document, without, "bench-draft", "the child-risk definition")


def flag_rules_document(context: ScoringContext, without: str) -> dict[str, object]:
    """A flag-rules draft: the area's current rules without the rule ``without``."""
    # A flag-rules version is numbered.
    return _without_rule(context.rules(AREA).document(), without, "99", "the flag rules")


def _without_rule(
    document: dict[str, object], rule_id: str, version: str, what: str
) -> dict[str, object]:
    document = copy.deepcopy(document)
    document["version"] = version
    rules = [r for r in document["rules"] if r["id"] != rule_id]  # type: ignore[attr-defined, index]
    if len(rules) == len(document["rules"]):  # type: ignore[arg-type]
        raise SystemExit(f"{what} has no rule {rule_id!r}")
    document["rules"] = rules
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
    parser.add_argument("--keep", action="store_true", help="keep the seeded database")
    parser.add_argument("--reuse", metavar="DATABASE", help="a database kept by --keep")
    parser.add_argument("--seed-only", action="store_true", help="seed (with --keep) and stop")
    parser.add_argument("--no-baseline", action="store_true", help="skip streaming alone")
    parser.add_argument(
        "--high-from",
        type=int,
        default=15,
        help="the draft's dash-ric high band (current: 14); a lower one changes more incidents",
    )
    parser.add_argument(
        "--flag-rules",
        metavar="RULE",
        nargs="?",
        const="idva_referral",
        help="a flag-rules draft instead: the area's rules without the rule RULE (default "
        "idva_referral, which reads the victim's level: each incident's victim part is "
        "scored; a rule reading the children, such as early_help_offer, has each scored "
        "in full)",
    )
    parser.add_argument(
        "--child-risk",
        metavar="RULE",
        nargs="?",
        const="child_intervened",
        help="a child-risk draft instead: the area's definition without the rule RULE "
        "(default child_intervened, which changes the children of about one incident in 20)",
    )
    parser.add_argument(
        "--red-flag",
        action="store_true",
        help="the draft also needs one aggravating item, not two, with a critical one: not a "
        "threshold-only draft, so every dash-ric incident's victim part is scored twice",
    )
    args = parser.parse_args()
    print(f"{os.cpu_count()} cores; load average at start {os.getloadavg()[0]:.2f}")
    context = ScoringContext.load(Settings(environment="test", database_url="sqlite://"))
    with bench_database(args.postgres_url, args.reuse, args.keep) as (url, fresh):
        if fresh:
            print(f"scoring {args.templates} synthetic templates …")
            rows = templates(context, args.templates)
            upgrade_to_head(url)
            print(f"seeding {args.incidents:,} incidents with assessments …")
            seed(url, rows, args.incidents)
        if args.seed_only:
            return 0
        database = Database(url)
        scope = Scope(AREA)
        if args.flag_rules:
            document = flag_rules_document(context, args.flag_rules)
        elif args.child_risk:
            document = child_risk_document(context, args.child_risk)
        else:
            document = draft_document(context, args.high_from, args.red_flag)
        draft = parse_draft(document)
        spec = ScenarioSpec.for_area(context, AREA, draft)
        baseline = float("nan")
        if not args.no_baseline:
            started = time.perf_counter()
            streamed = 0
            with database.engine.connect() as connection:
                for batch in stream_rows(connection, scope, BATCH, spec.stored_keys()):
                    streamed += len(batch)
            baseline = time.perf_counter() - started
            print(
                f"baseline: streamed {streamed:,} rows in {baseline:.1f} s "
                f"({streamed / baseline:,.0f}/s)"
            )
        load_before = os.getloadavg()[0]
        cpu_before = os.times()
        server_before = backend_cpu_seconds(url)
        tally, seconds = rescore_area(database, spec, scope, args.workers)
        server = backend_cpu_seconds(url) - server_before
        cpu = os.times()
        load = os.getloadavg()[0]
        parent = cpu.user + cpu.system - cpu_before.user - cpu_before.system
        workers = (
            cpu.children_user
            + cpu.children_system
            - cpu_before.children_user
            - cpu_before.children_system
        )
        print(
            f"CPU seconds: workers {workers:.1f}, reading process {parent:.1f}, PostgreSQL "
            f"{server:.1f}; total {workers + parent + server:.1f} = "
            f"{(workers + parent + server) / 2:.1f} s of both cores"
        )
        database.dispose()
        body = report(tally, draft=draft, area=AREA, seconds=seconds)
        print(json.dumps({k: body[k] for k in ("incidents", "failed", "victims")}, indent=1))
        print(
            f"what-if: re-scored {tally.incidents:,} incidents ({tally.failed} failed) in "
            f"{seconds:.1f} s ({tally.incidents / seconds:,.0f}/s) with {args.workers} workers; "
            f"streaming alone {baseline:.1f} s; levels of {tally.stored:,} counted from the "
            f"stored result, {tally.incidents - tally.stored:,} scored in full from their "
            "inputs; "
            f"load average (1 min) {load_before:.2f} at the start, "
            f"{load:.2f} at the end"
        )
        verdict = "MET" if seconds <= TARGET_SECONDS * args.incidents / 1_000_000 else "NOT MET"
        print(f"target {TARGET_SECONDS} s per 1,000,000: {verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
