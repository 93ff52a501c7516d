"""Area report latency (``GET /v1/reports/areas/{area}``) at 1,000,000 incidents on PostgreSQL.

Builds a throwaway database migrated to head (so the indexes are the migrations') with bulk
``INSERT … SELECT … FROM generate_series`` in the server, secondary indexes dropped for the
load and rebuilt from their own definitions, then ``VACUUM ANALYZE``. Then, over ``--runs``
runs after warm-up, it prints the median and the 95th percentile of:

- **app**: the report of one area-year through the whole application (``TestClient``, an
  auditor key: authentication, the queries, counting, suppression, JSON and the audit
  event every read writes), for a typical area and for the largest;
- **sql**: each statement the report sends, replayed alone on one connection;
- a baseline in the same run: ``SELECT 1`` and ``GET /livez``;

and ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement. The database is dropped at the end
unless ``--keep``. ``--reuse NAME`` migrates a kept database to head first (timed: a
migration may fill new columns from a million rows, as the report facts' did), then runs
``VACUUM ANALYZE`` (the rewritten rows' old versions go, as autovacuum would clear them)
and measures.

    .venv/bin/python bench/report_bench.py [--incidents 1000000] [--areas 150] [--years 3]
        [--flags-per-incident 3] [--runs 10] [--keep] [--reuse NAME] [--postgres-url URL]

Data (invented; the assessment JSON is the contract's invented example, tests/data): the
incidents occurred over the last ``--years`` years. One area in fifty incidents
(``E00000000``, the largest) and the rest spread evenly over the other ``--areas`` less one:
at the defaults about 2,200 incidents per area-year and 6,700 in the largest. Each incident
has a victim (600,000 victims, so many are repeat victims; one record in ten is a record of
its own merged into the victim's, as linking does), a perpetrator (700,000) and in a third a
child; one assessment (a second, a revision, for one in ten) whose ``inputs`` and
``result`` are the full JSON the engine stores (about 20 kB before compression), with the
report facts intake takes from them (app/assessments/facts.py), varied over 100 variants
in the paths the report reads (victim level 45/35/20 %, children and
what they went through, separation, MARAC referral and its repeat criterion, serial
perpetrator); ``--flags-per-incident`` flags, closed for incidents older than 30 days but
3 %, with a flag history: an acknowledgement by the agency for four in five and the
closing change for closed ones.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import json
import logging
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import bindparam, create_engine, make_url, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

# This checkout's app (not whichever one the environment was installed from), and the
# helpers of the queue benchmark next to this file.
sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).parent.parent))
from queue_bench import ACTION, FLAG_TYPES, abbreviate, captured, summary, timed

from app.assessments.facts import REPORT_FACT_COLUMNS, report_facts
from app.auth.keys import create_key
from app.config import Settings
from app.db import Database, utcnow
from app.main import create_app
from app.ops.migrations import upgrade_to_head
from app.reports.area import LONDON, area_report, period_bounds

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
EXAMPLE = Path(__file__).parent.parent / "tests" / "data" / "v1-assessments.json"
VICTIMS = 600_000
PERPETRATORS = 700_000
LARGEST = "E00000000"
TYPICAL = "E00000007"
LOADED_TABLES = (
    "incidents",
    "persons",
    "incident_persons",
    "assessments",
    "flags",
    "flag_events",
)


# --------------------------------------------------------------------------- data set


def variants() -> list[dict[str, Any]]:
    """100 assessments of the invented example, varied in what the report reads."""
    case = json.loads(EXAMPLE.read_text())["cases"][0]
    base_inputs, base_result = case["inputs"], case["assessment"]
    children = [p for p in base_inputs["incident"]["persons"] if p["role"] == "child"]
    adults = [p for p in base_inputs["incident"]["persons"] if p["role"] != "child"]
    child_levels = ["moderate", "moderate_to_serious", "serious", "severe"]
    out = []
    for k in range(100):
        inputs, result = copy.deepcopy(base_inputs), copy.deepcopy(base_result)
        level = "standard" if k < 45 else "medium" if k < 80 else "high"
        rank = {"standard": 0, "medium": 1, "high": 2}[level]
        n_children = k % 3
        kids = copy.deepcopy(children[:n_children])
        for i, kid in enumerate(kids):
            facts = kid.get("child") or {}
            facts.update(
                present=k % 2 == 0,
                witnessed=k % 4 == 0,
                injured=k % 17 == 0,
                intervened=k % 9 == 0,
                spoken_to_by_officer=k % 5 != 0,
            )
            kid["child"] = facts
            kid["ref"] = f"c{i + 1}"
        incident = inputs["incident"]
        incident["persons"] = adults + kids
        incident["relationship"]["separation"] = {
            "status": ["none", "recent", "planned", "perceived", "none"][k % 5]
        }
        incident["victim_checklist"]["answers"]["separation_past_year"] = (
            "yes" if k % 4 == 0 else "no"
        )
        result["children"] = [
            {**entry, "person_ref": f"c{i + 1}", "level": child_levels[(k + i) % 4]}
            for i, entry in enumerate(result["children"][:n_children])
        ]
        refer = level == "high"
        result["victim"]["level"] = level
        result["victim"]["marac"]["refer"] = refer
        result["victim"]["marac"]["criteria"] = (
            (["visible_high_risk", "repeat_marac"] if k % 3 == 0 else ["visible_high_risk"])
            if refer
            else []
        )
        result["perpetrator"]["serial"] = k % 10 == 0
        if n_children and rank < 3 and result["children"][-1]["level"] == "severe":
            rank = 3
        out.append(
            {
                "k": k,
                "inputs": inputs,
                "result": result,
                "lvl": level,
                "rank": rank,
                "refer": refer,
                **report_facts(inputs, result),
            }
        )
    return out


def build_steps(incidents: int, areas: int, years: int, per: int) -> list[tuple[str, str]]:
    types = ", ".join(f"'{t}'" for t, _, _, _ in FLAG_TYPES)
    agencies = ", ".join(f"'{a}'" for _, a, _, _ in FLAG_TYPES)
    kinds = ", ".join(f"'{k}'" for _, _, k, _ in FLAG_TYPES)
    refs = ", ".join(f"'{r}'" for _, _, _, r in FLAG_TYPES)
    days = 365 * years
    fact_columns = ", ".join(REPORT_FACT_COLUMNS)
    fact_values = ", ".join(f"v.{c}" for c in REPORT_FACT_COLUMNS)
    # Built from integers and this file's constants only.
    return [
        (
            "source rows",
            f"""
            CREATE UNLOGGED TABLE b_src AS
            SELECT g, gen_random_uuid() AS incident_id,
                   CASE WHEN mod(g, 50) = 0 THEN '{LARGEST}'
                        ELSE 'E' || lpad((1 + mod(g, {areas - 1}))::text, 8, '0') END AS area,
                   now() - random() * interval '{days} days' AS occurred_at,
                   mod(g * 37, 100) AS k, mod(g, {VICTIMS}) AS vn, mod(g, {PERPETRATORS}) AS pn,
                   CASE WHEN mod(g, 10) = 0 THEN gen_random_uuid() END AS merged_record,
                   CASE WHEN mod(g, 3) = 0 THEN gen_random_uuid() END AS child_id
            FROM generate_series(1, {incidents}) g""",  # noqa: S608
        ),
        (
            "people",
            f"""
            CREATE UNLOGGED TABLE b_vic AS
            SELECT n, gen_random_uuid() AS id FROM generate_series(0, {VICTIMS - 1}) n;
            CREATE UNLOGGED TABLE b_perp AS
            SELECT n, gen_random_uuid() AS id FROM generate_series(0, {PERPETRATORS - 1}) n""",  # noqa: S608
        ),
        (
            "persons",
            """
            INSERT INTO persons (id, created_at, merged_into_id)
            SELECT id, now(), NULL::uuid FROM b_vic
            UNION ALL SELECT id, now(), NULL FROM b_perp
            UNION ALL SELECT s.merged_record, s.occurred_at, v.id
                FROM b_src s JOIN b_vic v ON v.n = s.vn WHERE s.merged_record IS NOT NULL
            UNION ALL SELECT child_id, occurred_at, NULL FROM b_src WHERE child_id IS NOT NULL""",
        ),
        (
            "incidents",
            """
            INSERT INTO incidents (id, source_system, source_reference, area, occurred_at,
                reported_at, received_at, updated_at, created_by, version, original_sha256,
                review_due_at)
            SELECT incident_id, 'bench-records', 'B-' || g, area, occurred_at, occurred_at,
                   occurred_at, occurred_at, 'bench', 1, md5(g::text) || md5((-g)::text),
                   occurred_at + interval '6 years'
            FROM b_src""",
        ),
        (
            "incident persons",
            """
            INSERT INTO incident_persons (id, incident_id, person_id, position, ref, role,
                given_name, family_name, date_of_birth, unborn, link_rule, link_basis)
            SELECT gen_random_uuid(), s.incident_id, coalesce(s.merged_record, v.id), 0, 'v1',
                   'victim', 'Given' || s.vn, 'Family' || s.vn,
                   date '1970-01-01' + mod(s.vn, 12000), false,
                   CASE WHEN s.merged_record IS NULL THEN 'identifier:pnc' ELSE 'name_dob' END,
                   'bench'
            FROM b_src s JOIN b_vic v ON v.n = s.vn
            UNION ALL
            SELECT gen_random_uuid(), s.incident_id, p.id, 1, 'p1', 'perpetrator',
                   'Perp' || s.pn, 'Surname' || s.pn, NULL, false, 'identifier:pnc', 'bench'
            FROM b_src s JOIN b_perp p ON p.n = s.pn
            UNION ALL
            SELECT gen_random_uuid(), incident_id, child_id, 2, 'c1', 'child', 'Child' || g,
                   'Family' || vn, NULL, false, 'new', 'bench'
            FROM b_src WHERE child_id IS NOT NULL""",
        ),
        (
            "assessments",
            f"""
            INSERT INTO assessments (id, incident_id, version, trigger, created_at, created_by,
                submission_revision, inputs, result, victim_level, risk_rank, marac_refer,
                victim_checklist_id, victim_checklist_version, victim_checklist_sha256,
                child_checklist_id, child_checklist_version, child_checklist_sha256,
                flag_rules_sha256, classifier_sha256, {fact_columns})
            SELECT gen_random_uuid(), s.incident_id, a.version,
                   CASE WHEN a.version = 1 THEN 'intake' ELSE 'revision' END,
                   s.occurred_at + (a.version - 1) * interval '2 days', 'bench', a.version,
                   v.inputs, v.result, v.lvl, v.rank, v.refer, 'dash-ric', '1', repeat('a', 64),
                   'child-risk', '1', repeat('b', 64), repeat('c', 64), NULL, {fact_values}
            FROM b_src s
            CROSS JOIN LATERAL (SELECT 1 AS version, s.k AS k
                                UNION ALL
                                SELECT 2, mod(s.k + 17, 100) WHERE mod(s.g, 10) = 5) a
            JOIN b_var v ON v.k = a.k""",  # noqa: S608
        ),
        (
            "flags",
            f"""
            INSERT INTO flags (id, incident_id, assessment_id, area, type, agency, subject_kind,
                subject_ref, subject_person_id, priority, due_at, status, status_reason,
                assignee, rule_id, rules_id, rules_version, rules_sha256, reason, because,
                action, dedupe_key, needs_review, version, created_at, updated_at)
            SELECT gen_random_uuid(), s.incident_id, a.id, s.area,
                   (ARRAY[{types}])[t], (ARRAY[{agencies}])[t], (ARRAY[{kinds}])[t],
                   (ARRAY[{refs}])[t], NULL, 1 + mod(s.g + n, 4),
                   s.occurred_at + interval '30 minutes' + mod(n * 13, 29) * interval '7 hours',
                   CASE WHEN s.occurred_at > now() - interval '30 days' OR random() < 0.03
                        THEN (ARRAY['open', 'acknowledged', 'in_progress'])[1 + mod(s.g + n, 3)]
                        ELSE (ARRAY['done', 'done', 'done', 'not_required'])[1 + mod(s.g * n, 4)]
                   END,
                   NULL, NULL, (ARRAY[{types}])[t], 'default-flags', '1', repeat('d', 64),
                   'Bench flag: ' || (ARRAY[{types}])[t] || '; victim v1 assessed high',
                   '[{{"kind": "victim_level", "person_ref": "v1", "level": "high"}}]'::jsonb,
                   '{ACTION}', (ARRAY[{types}])[t] || ':' || n, false, 1,
                   s.occurred_at + interval '30 minutes', s.occurred_at + interval '30 minutes'
            FROM b_src s
            JOIN assessments a ON a.incident_id = s.incident_id AND a.version = 1
            CROSS JOIN generate_series(1, {per}) n
            CROSS JOIN LATERAL (SELECT 1 + mod(s.g * 7 + n * 3, {len(FLAG_TYPES)}) AS t) tt""",  # noqa: S608
        ),
        (
            "flag events",
            """
            INSERT INTO flag_events (id, flag_id, at, principal_id, role, change, from_value,
                to_value, note)
            SELECT gen_random_uuid(), f.id, f.created_at + (1 + mod(abs(hashtext(f.id::text)), 96))
                       * interval '1 hour',
                   'key:bench-agency', 'agency', 'status', 'open', 'acknowledged', NULL
            FROM flags f WHERE mod(abs(hashtext(f.id::text)), 5) <> 0
            UNION ALL
            SELECT gen_random_uuid(), f.id, f.created_at + interval '5 days',
                   'key:bench-triage', 'triage', 'status', 'acknowledged', f.status, NULL
            FROM flags f WHERE f.status IN ('done', 'not_required')""",
        ),
        ("drop source", "DROP TABLE b_src, b_vic, b_perp, b_var"),
    ]


def build(engine: Engine, *, incidents: int, areas: int, years: int, per: int) -> None:
    with engine.connect() as conn:
        conn.exec_driver_sql("SET synchronous_commit = off")
        conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        conn.exec_driver_sql("SET work_mem = '256MB'")
        # No foreign-key triggers for the bulk load (consistent by construction), and the
        # plain indexes built once afterwards from their own definitions (as pg_restore).
        conn.exec_driver_sql("SET session_replication_role = replica")
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = 'public' "
                "AND tablename = ANY(:tables) AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            ),
            {"tables": list(LOADED_TABLES)},
        ).all()
        for index_name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{index_name}"')
        facts = ", ".join(
            f"{c} {'int' if c.startswith('children_') else 'bool'}" for c in REPORT_FACT_COLUMNS
        )
        conn.exec_driver_sql(
            "CREATE UNLOGGED TABLE b_var (k int PRIMARY KEY, inputs jsonb, result jsonb, "
            f"lvl text, rank int, refer bool, {facts})"
        )
        values = ", ".join(f":{c}" for c in REPORT_FACT_COLUMNS)
        conn.execute(
            text(
                f"INSERT INTO b_var VALUES (:k, :inputs, :result, :lvl, :rank, :refer, {values})"  # noqa: S608
            ).bindparams(bindparam("inputs", type_=JSONB), bindparam("result", type_=JSONB)),
            variants(),
        )
        conn.commit()
        for name, sql in build_steps(incidents, areas, years, per):
            start = time.perf_counter()
            for statement in sql.split(";\n"):
                conn.exec_driver_sql(statement)
            conn.commit()
            print(f"  {name:<18} {time.perf_counter() - start:7.1f} s", flush=True)
        start = time.perf_counter()
        for _, definition in indexes:
            conn.exec_driver_sql(definition)
        conn.commit()
        took = time.perf_counter() - start
        print(f"  {len(indexes)} indexes{'':9} {took:7.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        start = time.perf_counter()
        conn.exec_driver_sql("VACUUM ANALYZE")
        print(f"  {'vacuum analyze':<18} {time.perf_counter() - start:7.1f} s", flush=True)


def sizes(engine: Engine, start: dt.datetime, end: dt.datetime) -> None:
    with engine.connect() as conn:
        for table in LOADED_TABLES:
            n = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()  # noqa: S608
            size = conn.exec_driver_sql(
                f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))"
            ).scalar()
            print(f"  {table:<17} {n:>10,} rows  {size} with indexes and TOAST")
        for area in (TYPICAL, LARGEST):
            n, flags = (
                conn.execute(
                    text(
                        f"SELECT count(*) FROM {table} WHERE area = :a "  # noqa: S608
                        f"AND {column} >= :s AND {column} < :e"
                    ),
                    {"a": area, "s": start, "e": end},
                ).scalar_one()
                for table, column in (("incidents", "occurred_at"), ("flags", "created_at"))
            )
            print(f"  area-year {area}: {n:,} incidents, {flags:,} flags raised")


# --------------------------------------------------------------------------- measuring


def period() -> tuple[dt.date, dt.date]:
    """The twelve whole months before this one (local dates)."""
    first = dt.datetime.now(LONDON).date().replace(day=1)
    return first.replace(year=first.year - 1), first


def measure_statements(engine: Engine, area: str, start: dt.date, end: dt.date, runs: int) -> None:
    with captured(engine) as statements, Session(engine) as session:
        area_report(session, area, start, end, utcnow())
    plans = []
    # Settings the report makes for its transaction (``SET LOCAL jit = off``) are made on
    # the replaying connection too, and not timed.
    settings = [s for s, _ in statements if s.lstrip().upper().startswith("SET ")]
    statements = [(s, p) for s, p in statements if s not in settings]
    with engine.connect() as conn:
        for setting in settings:
            conn.exec_driver_sql(setting.replace("SET LOCAL", "SET"))
        total = []
        for i, (statement, params) in enumerate(statements, 1):
            samples = timed(lambda s=statement, p=params: conn.exec_driver_sql(s, p).all(), runs, 2)
            total.append(statistics.median(samples))
            first_line = " ".join(statement.split())[:60]
            print(f"  sql  {area} #{i} {first_line:<60} {summary(samples)}", flush=True)
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            plans.append((i, statement, params, [row[0] for row in plan]))
        print(
            f"  sql  {area} sum of the medians: {sum(total):.1f} ms ({len(statements)} statements)"
        )
    print(f"\nplans for {area}: EXPLAIN (ANALYZE, BUFFERS)")
    for i, statement, params, plan in plans:
        print(f"\n-- #{i}\n{abbreviate(' '.join(statement.split()))}\n-- params: {params}")
        for line in plan:
            print("   " + line)


def run(database: Database, runs: int) -> None:
    engine = database.engine
    start, end = period()
    sizes(engine, *period_bounds(start, end))
    with Session(engine) as session:
        secret = create_key(session, role="auditor").secret
        session.commit()
    headers = {"Authorization": f"Bearer {secret}", "X-Purpose": "audit"}
    with open("/proc/loadavg") as f:
        print(f"\nload average before measuring: {' '.join(f.read().split()[:3])}")
    print(f"\nbaseline ({runs * 5} runs)")
    with engine.connect() as conn:
        samples = timed(lambda: conn.exec_driver_sql("SELECT 1").all(), runs * 5)
        print(f"  sql  {'SELECT 1':<40} {summary(samples)}")
    settings = Settings(environment="test", database_url=database.url, log_level="WARNING")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings, database)
    query = f"from={start.isoformat()}&to={end.isoformat()}"
    with TestClient(app) as client:
        samples = timed(lambda: client.get("/livez"), runs * 5)
        print(f"  app  {'GET /livez':<40} {summary(samples)}")
        print(f"\nthe report of one area-year, {start} to {end} ({runs} runs, 2 warm-up)")
        for area in (TYPICAL, LARGEST):
            path = f"/v1/reports/areas/{area}?{query}"
            r = client.get(path, headers=headers)
            assert r.status_code == 200, r.text
            incidents = r.json()["tables"][0]["total"]["values"]["incidents"]
            samples = timed(lambda p=path: client.get(p, headers=headers), runs, 2)
            label = f"GET report {area} ({incidents} incidents)"
            print(f"  app  {label:<40} {summary(samples)}", flush=True)
            samples = timed(lambda p=path: client.get(p + "&format=csv", headers=headers), runs, 1)
            print(f"  app  {'  the same, format=csv':<40} {summary(samples)}", flush=True)
    print(f"\neach statement alone ({runs} runs)")
    for area in (TYPICAL, LARGEST):
        measure_statements(engine, area, start, end, runs)
    with open("/proc/loadavg") as f:
        print(f"\nload average after measuring: {' '.join(f.read().split()[:3])}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url", default=os.environ.get("TRIAGE_TEST_POSTGRES_URL", DEFAULT_URL)
    )
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--areas", type=int, default=150)
    parser.add_argument("--years", type=int, default=3)
    parser.add_argument("--flags-per-incident", type=int, default=3)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument(
        "--reuse", metavar="NAME", help="measure a kept bench database (migrated to head first)"
    )
    args = parser.parse_args()

    admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    name = args.reuse or f"triage_report_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
    if not args.reuse:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    database = Database(url)
    try:
        if not args.reuse:
            print(f"database {name}: migrating to head", flush=True)
            upgrade_to_head(url)
            print(f"building {args.incidents:,} incidents", flush=True)
            began = time.perf_counter()
            build(
                database.engine,
                incidents=args.incidents,
                areas=args.areas,
                years=args.years,
                per=args.flags_per_incident,
            )
            print(f"  built in {time.perf_counter() - began:.0f} s", flush=True)
        else:
            # A kept database gets the migrations added since (new indexes, columns filled
            # from the JSON), then VACUUM ANALYZE: a migration that rewrites rows leaves
            # the old versions behind, which autovacuum would clear in a while.
            began = time.perf_counter()
            upgrade_to_head(url)
            print(f"migrated to head in {time.perf_counter() - began:.0f} s", flush=True)
            began = time.perf_counter()
            with database.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            print(f"vacuumed and analysed in {time.perf_counter() - began:.0f} s")
        run(database, args.runs)
    finally:
        database.dispose()
        if args.keep or args.reuse:
            print(f"kept database {name}")
        else:
            with admin.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            print(f"dropped database {name}")
        admin.dispose()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
