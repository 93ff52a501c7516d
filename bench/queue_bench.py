"""First-page latency of GET /v1/flags and GET /v1/queue at 1,000,000 incidents / 5,000,000 flags.

Builds the data set in a dedicated PostgreSQL database (migrated to head, so the indexes are
the migrations'), with plain ``INSERT … SELECT … FROM generate_series`` in the server, then
``VACUUM ANALYZE``. Then, for each listing, measures over ``--runs`` runs (after warm-up):

- **app**: the request in-process through the whole application with ``TestClient``
  (authentication, the query, serialisation and the audit event that every read writes);
- **sql**: the statements that request sends, replayed on one connection (what the database
  itself costs);

and prints the median and the 95th percentile, a baseline measured in the same run
(``SELECT 1`` and ``GET /livez``), and ``EXPLAIN (ANALYZE, BUFFERS)`` of every statement.
The database is dropped at the end unless ``--keep``.

    .venv/bin/python bench/queue_bench.py [--incidents 1000000] [--flags-per-incident 5]
        [--areas 150] [--runs 50] [--keep] [--reuse NAME] [--postgres-url URL]

Data (invented, no personal data): incidents spread over the last two years across
``--areas`` areas; risk ranks 0-3 with shares 45/30/18/7 %; five flags per incident with the
contract's types, priorities 1-4 and due times after the incident. Flags of incidents older
than 30 days are closed except ``--open-share-old`` (default 3 %, the overdue backlog);
younger incidents' flags are mostly open. ``--all-open`` leaves every flag open (the worst
case for the queue: one million queued incidents).
"""

from __future__ import annotations

import argparse
import logging
import math
import os
import re
import statistics
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, make_url
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from app.auth.keys import create_key
from app.config import Settings
from app.db import Database, utcnow
from app.flags import repository
from app.flags.queue import queue_page
from app.main import create_app
from app.ops.migrations import upgrade_to_head

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
FLAG_TYPES = [
    ("marac_referral", "marac", "victim", "v1"),
    ("idva_referral", "idva", "victim", "v1"),
    ("children_social_care_referral", "csc", "child", "c1"),
    ("early_help_offer", "early_help", "child", "c1"),
    ("operation_encompass", "school", "child", "c1"),
    ("child_not_spoken_to", "police", "child", "c1"),
    ("perpetrator_action", "police", "perpetrator", "p1"),
    ("serial_perpetrator", "police", "perpetrator", "p1"),
    ("separation_escalation", "idva", "victim", "v1"),
    ("strangulation_medical", "health", "victim", "v1"),
    ("pregnancy_health", "health", "victim", "v1"),
    ("victim_responsibility_plan", "csc", "victim", "v1"),
    ("long_term_review", "csc", "victim", "v1"),
    ("child_recovery_support", "health", "child", "c1"),
    ("classifier_elevated", "triage", "victim", "v1"),
]
ACTION = (
    "Refer the case on the criteria named in the assessment, with the perpetrator history "
    "and the assessment of each child; record what was done and when (invented bench text)."
)


def area_code(i: int) -> str:
    return "E" + str(i).zfill(8)


# --------------------------------------------------------------------------- data set


def build(
    engine: Engine, *, incidents: int, per: int, areas: int, old_open: float, all_open: bool
) -> None:
    types = ", ".join(f"'{t}'" for t, _, _, _ in FLAG_TYPES)
    agencies = ", ".join(f"'{a}'" for _, a, _, _ in FLAG_TYPES)
    kinds = ", ".join(f"'{k}'" for _, _, k, _ in FLAG_TYPES)
    refs = ", ".join(f"'{r}'" for _, _, _, r in FLAG_TYPES)
    open_statuses = "'open', 'open', 'acknowledged', 'in_progress'"
    closed_statuses = "'done', 'done', 'done', 'not_required'"
    open_young = "random() < 0.75" if not all_open else "true"
    open_old = f"random() < {old_open}" if not all_open else "true"
    steps = [
        (
            "source rows",
            # Built from integers and this file's constants only.
            f"""
            CREATE UNLOGGED TABLE bench_src AS
            SELECT g,
                   gen_random_uuid() AS incident_id,
                   gen_random_uuid() AS assessment_id,
                   'E' || lpad(mod(g, {areas})::text, 8, '0') AS area,
                   now() - random() * interval '730 days' AS occurred_at,
                   CASE WHEN r < 0.45 THEN 0 WHEN r < 0.75 THEN 1 WHEN r < 0.93 THEN 2 ELSE 3 END
                       AS risk_rank
            FROM (SELECT g, random() AS r FROM generate_series(1, {incidents}) g) s""",  # noqa: S608
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
            FROM bench_src""",
        ),
        (
            "assessments",
            """
            INSERT INTO assessments (id, incident_id, version, trigger, created_at, created_by,
                submission_revision, inputs, result, victim_level, risk_rank, marac_refer,
                victim_checklist_id, victim_checklist_version, victim_checklist_sha256,
                child_checklist_id, child_checklist_version, child_checklist_sha256,
                flag_rules_sha256, classifier_sha256)
            SELECT assessment_id, incident_id, 1, 'intake', occurred_at, 'bench', 1, NULL, NULL,
                   (ARRAY['standard', 'medium', 'high', 'high'])[risk_rank + 1], risk_rank,
                   risk_rank >= 2, 'dash-ric', '1', repeat('a', 64), 'child-risk', '1',
                   repeat('b', 64), repeat('c', 64), NULL
            FROM bench_src""",
        ),
        (
            "flags",
            f"""
            INSERT INTO flags (id, incident_id, assessment_id, area, type, agency, subject_kind,
                subject_ref, subject_person_id, priority, due_at, status, status_reason,
                assignee, rule_id, rules_id, rules_version, rules_sha256, reason, because,
                action, dedupe_key, needs_review, version, created_at, updated_at)
            SELECT gen_random_uuid(), s.incident_id, s.assessment_id, s.area,
                   (ARRAY[{types}])[t], (ARRAY[{agencies}])[t], (ARRAY[{kinds}])[t],
                   (ARRAY[{refs}])[t], NULL, 1 + mod(g + k, 4),
                   s.occurred_at + mod(k * 13, 29) * interval '7 hours',
                   CASE WHEN (CASE WHEN s.occurred_at > now() - interval '30 days'
                                   THEN {open_young} ELSE {open_old} END)
                        THEN (ARRAY[{open_statuses}])[1 + mod(g + k, 4)]
                        ELSE (ARRAY[{closed_statuses}])[1 + mod(g * k, 4)] END,
                   NULL, NULL, (ARRAY[{types}])[t], 'default-flags', '1', repeat('d', 64),
                   'Bench flag: ' || (ARRAY[{types}])[t] || '; victim v1 assessed high; '
                       || 'answer strangulation = yes',
                   '[{{"kind": "victim_level", "person_ref": "v1", "level": "high"}}]'::jsonb,
                   '{ACTION}', (ARRAY[{types}])[t] || ':' || k, false, 1, s.occurred_at,
                   s.occurred_at
            FROM bench_src s
            CROSS JOIN generate_series(1, {per}) k
            CROSS JOIN LATERAL (SELECT 1 + mod(s.g * 7 + k * 3, {len(FLAG_TYPES)}) AS t) tt""",  # noqa: S608
        ),
        (
            "queue rows",
            """
            INSERT INTO incident_queue (incident_id, area, occurred_at, risk_rank, sort_rank,
                victim_level, highest_child_level, assessment_id, assessment_version,
                open_flags, earliest_due_at, updated_at)
            SELECT s.incident_id, s.area, s.occurred_at, s.risk_rank, 3 - s.risk_rank,
                   (ARRAY['standard', 'medium', 'high', 'high'])[s.risk_rank + 1],
                   CASE WHEN s.risk_rank = 3 THEN 'severe' ELSE NULL END, s.assessment_id, 1,
                   f.n, f.earliest, now()
            FROM (SELECT incident_id, count(*) AS n, min(due_at) AS earliest FROM flags
                  WHERE status IN ('open', 'acknowledged', 'in_progress')
                  GROUP BY incident_id) f
            JOIN bench_src s USING (incident_id)""",
        ),
        ("drop source", "DROP TABLE bench_src"),
    ]
    with engine.connect() as conn:
        conn.exec_driver_sql("SET synchronous_commit = off")
        conn.exec_driver_sql("SET maintenance_work_mem = '512MB'")
        conn.exec_driver_sql("SET work_mem = '256MB'")
        # Foreign keys are checked by triggers: off for the bulk load (the rows are built
        # consistent), as pg_restore does.
        conn.exec_driver_sql("SET session_replication_role = replica")
        # Secondary indexes are built after the load (as pg_restore does): one sort per
        # index instead of five million random inserts into each. Their definitions are
        # read back from the migrated schema, so they are exactly the migrations' indexes.
        secondary = conn.exec_driver_sql(
            "SELECT indexname, indexdef FROM pg_indexes WHERE tablename = 'flags' "
            "AND indexname NOT IN (SELECT conname FROM pg_constraint)"
        ).all()
        for index_name, _ in secondary:
            conn.exec_driver_sql(f'DROP INDEX "{index_name}"')
        conn.commit()
        for name, sql in steps:
            start = time.perf_counter()
            conn.exec_driver_sql(sql)
            conn.commit()
            print(f"  {name:<12} {time.perf_counter() - start:7.1f} s", flush=True)
            if name == "flags":
                start = time.perf_counter()
                for _, definition in secondary:
                    conn.exec_driver_sql(definition)
                conn.commit()
                took = time.perf_counter() - start
                print(f"  {'flag indexes':<12} {took:7.1f} s ({len(secondary)})", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        start = time.perf_counter()
        conn.exec_driver_sql("VACUUM ANALYZE")
        print(f"  {'vacuum':<12} {time.perf_counter() - start:7.1f} s", flush=True)


def sizes(engine: Engine) -> None:
    with engine.connect() as conn:
        for table in ("incidents", "flags", "incident_queue"):
            n = conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar()  # noqa: S608
            size = conn.exec_driver_sql(
                f"SELECT pg_size_pretty(pg_total_relation_size('{table}'))"
            ).scalar()
            print(f"  {table:<15} {n:>10,} rows  {size} with indexes")
        n_open = conn.exec_driver_sql(
            "SELECT count(*) FROM flags WHERE status IN ('open', 'acknowledged', 'in_progress')"
        ).scalar()
        print(f"  open flags      {n_open:>10,}")


# --------------------------------------------------------------------------- measuring


def summary(samples: list[float]) -> str:
    ordered = sorted(samples)
    p95 = ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]
    return f"median {statistics.median(ordered):7.2f} ms   p95 {p95:7.2f} ms"


def timed(fn: Callable[[], Any], runs: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


@contextmanager
def captured(engine: Engine) -> Iterator[list[tuple[str, Any]]]:
    statements: list[tuple[str, Any]] = []

    def listen(_c: Any, _cur: Any, statement: str, params: Any, _ctx: Any, _many: bool) -> None:
        statements.append((statement, params))

    event.listen(engine, "before_cursor_execute", listen)
    try:
        yield statements
    finally:
        event.remove(engine, "before_cursor_execute", listen)


def measure_sql(engine: Engine, name: str, call: Callable[[Session], Any], runs: int) -> None:
    """Replay the statements ``call`` sends; print their timing and plans."""
    with captured(engine) as statements, Session(engine) as session:
        call(session)
    with engine.connect() as conn:

        def replay() -> None:
            for statement, params in statements:
                conn.exec_driver_sql(statement, params).fetchall()

        print(f"  sql  {name:<38} {summary(timed(replay, runs))}   ({len(statements)} statements)")
        for statement, params in statements:
            plan = conn.exec_driver_sql("EXPLAIN (ANALYZE, BUFFERS) " + statement, params)
            PLANS.append((name, statement, params, [row[0] for row in plan]))


PLANS: list[tuple[str, str, Any, list[str]]] = []


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--postgres-url", default=os.environ.get("TRIAGE_TEST_POSTGRES_URL", DEFAULT_URL)
    )
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--flags-per-incident", type=int, default=5)
    parser.add_argument("--areas", type=int, default=150)
    parser.add_argument("--open-share-old", type=float, default=0.03)
    parser.add_argument("--all-open", action="store_true")
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--keep", action="store_true", help="keep the database afterwards")
    parser.add_argument("--reuse", metavar="NAME", help="measure an existing bench database")
    args = parser.parse_args()

    admin = create_engine(args.postgres_url, isolation_level="AUTOCOMMIT")
    name = args.reuse or f"triage_queue_bench_{uuid.uuid4().hex[:8]}"
    url = make_url(args.postgres_url).set(database=name).render_as_string(hide_password=False)
    if not args.reuse:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    database = Database(url)
    try:
        engine = database.engine
        if not args.reuse:
            print(f"database {name}: migrating to head", flush=True)
            upgrade_to_head(url)
            total = args.incidents * args.flags_per_incident
            print(f"building {args.incidents:,} incidents and {total:,} flags", flush=True)
            start = time.perf_counter()
            build(
                engine,
                incidents=args.incidents,
                per=args.flags_per_incident,
                areas=args.areas,
                old_open=args.open_share_old,
                all_open=args.all_open,
            )
            print(f"  built in {time.perf_counter() - start:.0f} s")
        sizes(engine)
        run(database, args)
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


def run(database: Database, args: argparse.Namespace) -> None:
    engine = database.engine
    area = area_code(7)
    areas3 = [area_code(7), area_code(8), area_code(9)]
    with Session(engine) as session:
        keys = {
            "triage": create_key(session, role="triage", areas=[area]).secret,
            "triage3": create_key(session, role="triage", areas=areas3).secret,
            "school": create_key(session, role="agency", agency="school", areas=[area]).secret,
            "auditor": create_key(session, role="auditor").secret,
        }
        session.commit()

    def headers(who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {keys[who]}", "X-Purpose": "bench: queue latency"}

    print(f"\nbaseline ({args.runs} runs)")
    with engine.connect() as conn:
        samples = timed(lambda: conn.exec_driver_sql("SELECT 1").all(), args.runs)
        print(f"  sql  {'SELECT 1':<38} {summary(samples)}")
    settings = Settings(environment="test", database_url=database.url, log_level="WARNING")
    logging.getLogger("httpx").setLevel(logging.WARNING)
    app = create_app(settings, database)
    with TestClient(app) as client:
        print(
            f"  app  {'GET /livez':<38} {summary(timed(lambda: client.get('/livez'), args.runs))}"
        )

        print(f"\nfirst page, 50 rows ({args.runs} runs each)")
        requests = [
            ("GET /v1/flags (triage, 1 area)", "/v1/flags?limit=50", "triage"),
            ("GET /v1/flags (triage, 3 areas)", "/v1/flags?limit=50", "triage3"),
            ("GET /v1/flags (school agency)", "/v1/flags?limit=50", "school"),
            ("GET /v1/flags (auditor, all areas)", "/v1/flags?limit=50", "auditor"),
            ("GET /v1/flags?overdue=true (triage)", "/v1/flags?limit=50&overdue=true", "triage"),
            ("GET /v1/queue (triage, 1 area)", "/v1/queue?limit=50", "triage"),
            ("GET /v1/queue (triage, 3 areas)", "/v1/queue?limit=50", "triage3"),
            ("GET /v1/queue (auditor, all areas)", "/v1/queue?limit=50", "auditor"),
        ]
        for label, path, who in requests:
            r = client.get(path, headers=headers(who))
            assert r.status_code == 200, r.text
            n = len(r.json()["items"])
            samples = timed(lambda p=path, w=who: client.get(p, headers=headers(w)), args.runs)
            print(f"  app  {label:<38} {summary(samples)}   ({n} rows)")
        # The second page, through the cursor.
        for label, path, who in (
            ("GET /v1/flags page 2 (triage)", "/v1/flags?limit=50", "triage"),
            ("GET /v1/queue page 2 (triage)", "/v1/queue?limit=50", "triage"),
        ):
            cursor = client.get(path, headers=headers(who)).json()["next_cursor"]
            if cursor is None:
                print(f"  app  {label:<38} (no second page)")
                continue
            nxt = f"{path}&cursor={cursor}"
            samples = timed(lambda p=nxt, w=who: client.get(p, headers=headers(w)), args.runs)
            print(f"  app  {label:<38} {summary(samples)}")
        samples = timed(lambda: client.get("/metrics"), 5, warmup=1)
        print(f"  app  {'GET /metrics (overdue gauge, 5 runs)':<38} {summary(samples)}")

    now = utcnow()
    print(f"\nthe same statements, replayed ({args.runs} runs each)")
    for label, call in [
        (
            "flags (triage, 1 area)",
            lambda s: repository.list_flags(
                s, repository.FlagFilters(areas=frozenset({area})), now=now, after=None, limit=51
            ),
        ),
        (
            "flags (triage, 3 areas)",
            lambda s: repository.list_flags(
                s, repository.FlagFilters(areas=frozenset(areas3)), now=now, after=None, limit=51
            ),
        ),
        (
            "flags (school agency)",
            lambda s: repository.list_flags(
                s,
                repository.FlagFilters(areas=frozenset({area}), agencies=frozenset({"school"})),
                now=now,
                after=None,
                limit=51,
            ),
        ),
        (
            "flags (auditor, all areas)",
            lambda s: repository.list_flags(
                s, repository.FlagFilters(), now=now, after=None, limit=51
            ),
        ),
        ("queue (triage, 1 area)", lambda s: queue_page(s, areas={area}, after=None, limit=51)),
        (
            "queue (triage, 3 areas)",
            lambda s: queue_page(s, areas=set(areas3), after=None, limit=51),
        ),
        ("queue (auditor, all areas)", lambda s: queue_page(s, areas=None, after=None, limit=51)),
        ("overdue gauge GROUP BY", lambda s: repository.overdue_by_type_and_agency(s, now)),
    ]:
        measure_sql(engine, label, call, args.runs if "gauge" not in label else 5)

    print("\nplans: EXPLAIN (ANALYZE, BUFFERS)")
    for label, statement, params, plan in PLANS:
        shown = {k: v for k, v in params.items() if not re.fullmatch(r"\w+_1_\d+", k)}
        print(f"\n-- {label}\n{abbreviate(' '.join(statement.split()))}\n-- params: {shown}")
        for line in plan:
            print("   " + abbreviate(line))


def abbreviate(text: str) -> str:
    """Long lists of ids (the second statement of a page fetches rows by id) as a count."""
    text = re.sub(r"'\{[0-9a-f,-]{200,}\}'", lambda m: f"'{{{m[0].count(',') + 1} ids}}'", text)
    return re.sub(
        r"(%\(\w+_1_1\)s::UUID)(, %\(\w+_1_\d+\)s::UUID)+",
        lambda m: f"{m[1]}, … {m[0].count(',') + 1} ids",
        text,
    )


if __name__ == "__main__":
    raise SystemExit(main())
