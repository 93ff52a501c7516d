"""Intake latency with and without stored history, over a million stored incidents (PostgreSQL).

Builds a throwaway database migrated to head and fills it with bulk SQL: 260,000
perpetrators with 1-7 incidents each (cut at 1,000,000 incidents; one in ten has a second
victim, so is serial), 300,000 victims (half known by PNC id, half by name and date of
birth only, each later incident of those linked as a record of its own merged into the
first, as linking does), a child in a third of the households (by NHS number), one
assessment per incident (one in twenty referred to MARAC) and a flag on those of the
last 150 days (open for the last 100). Indexes are dropped for the load and rebuilt from
their own definitions. Then ANALYZE, and in-process ``POST /v1/incidents`` through the
whole application, alternating:

(a) new persons: linking finds nobody, history is empty;
(b) a stored victim, child and serial perpetrator with the longest histories.

It prints medians and 95th percentiles of each, the ratio of medians (target ≤ 1.5), and
EXPLAIN (ANALYZE, BUFFERS) of every query the history and pattern look-ups run for a (b)
incident, then drops the database. All data is synthetic.

    .venv/bin/python bench/history_bench.py [--incidents 1000000] [--runs 60] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import statistics
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import create_engine, event, make_url, text

from app.auth.keys import create_key
from app.config import Settings
from app.contract.incident import Incident
from app.db import Database
from app.incidents import models
from app.intake import patterns
from app.main import create_app
from app.ops.migrations import upgrade_to_head
from app.people import repository
from app.people.history import stored_history, stored_records
from app.scoring.history import History

VICTIMS = 300_000
AREA = "E09000018"
SYSTEM = "bench-records"
NOW = datetime.now(UTC).replace(microsecond=0)
MEDIUM = {"strangulation": "yes", "separation_past_year": "yes"}


@contextmanager
def fresh_database(postgres_url: str) -> Iterator[str]:
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"history_bench_{secrets.token_hex(6)}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()
        print(f"dropped database {name}")


# --------------------------------------------------------------------------- building

# Each step is one statement; numbers n are person numbers, ids are random UUIDs.
BUILD = [
    (
        "perpetrators",
        """
        CREATE UNLOGGED TABLE b_perp AS
        SELECT n, gen_random_uuid() AS id, 1 + (n * 2654435761::bigint % 4294967296) % 7 AS k
        FROM generate_series(0, :perpetrators - 1) AS n
        """,
    ),
    (
        "victims",
        """
        CREATE UNLOGGED TABLE b_vic AS
        SELECT n, gen_random_uuid() AS id, n % 2 = 0 AS has_pnc,
               date '1970-01-01' + (n % 12000) AS dob
        FROM generate_series(0, :victims - 1) AS n
        """,
    ),
    (
        "children",
        """
        CREATE UNLOGGED TABLE b_child AS
        SELECT n, gen_random_uuid() AS id FROM b_vic WHERE n % 3 = 0
        """,
    ),
    (
        "incident plan",
        # A perpetrator's incidents 60 days apart, the last 60-89 days ago; one in ten
        # perpetrators has a second victim for the later half of them.
        """
        CREATE UNLOGGED TABLE b_inc AS
        SELECT gen_random_uuid() AS id, p.n AS p, j, p.k,
               CASE WHEN p.n % 20 IN (0, 1) AND j > (p.k + 1) / 2
                    THEN (p.n * 7919 + 13) % :victims ELSE p.n % :victims END AS v,
               CAST(:now AS timestamptz)
                   - make_interval(days => ((p.k - j + 1) * 60 + p.n % 30)::int) AS occurred_at
        FROM b_perp p, generate_series(1, p.k) AS j
        LIMIT :incidents
        """,
    ),
    (
        "victim records",
        # Name-and-DOB victims: every incident after the first is a record of its own,
        # merged into the first (what linking does on a name_dob match).
        """
        CREATE UNLOGGED TABLE b_vinc AS
        SELECT i.id AS incident_id, i.v, v.has_pnc,
               CASE WHEN v.has_pnc OR r = 1 THEN v.id ELSE gen_random_uuid() END AS record,
               CASE WHEN v.has_pnc OR r = 1 THEN NULL ELSE v.id END AS merged_into
        FROM (SELECT id, v, row_number() OVER (PARTITION BY v ORDER BY occurred_at, id) AS r
              FROM b_inc) AS i
        JOIN b_vic v ON v.n = i.v
        """,
    ),
    (
        "persons",
        """
        INSERT INTO persons (id, created_at, merged_into_id)
        SELECT id, CAST(:now AS timestamptz), NULL::uuid FROM b_perp
        UNION ALL SELECT id, CAST(:now AS timestamptz), NULL FROM b_vic
        UNION ALL SELECT id, CAST(:now AS timestamptz), NULL FROM b_child
        UNION ALL SELECT record, CAST(:now AS timestamptz), merged_into
        FROM b_vinc WHERE merged_into IS NOT NULL
        """,
    ),
    (
        "identifiers",
        """
        INSERT INTO person_identifiers (id, person_id, scheme, value)
        SELECT gen_random_uuid(), id, 'pnc', 'BP/' || n FROM b_perp
        UNION ALL SELECT gen_random_uuid(), id, 'pnc', 'BV/' || n FROM b_vic WHERE has_pnc
        UNION ALL SELECT gen_random_uuid(), id, 'nhs', (9000000000 + n)::text FROM b_child
        """,
    ),
    (
        "match keys",
        """
        INSERT INTO person_match_keys (id, person_id, key_sha256, created_at)
        SELECT gen_random_uuid(), k.person_id,
               encode(sha256(convert_to('name_dob:v1:family' || k.n || '|given' || k.n || '|'
                                        || to_char(k.dob, 'YYYY-MM-DD'), 'UTF8')), 'hex'),
               :now
        FROM (SELECT v.n, v.dob, v.id AS person_id FROM b_vic v
              UNION ALL
              SELECT v.n, v.dob, r.record FROM b_vinc r JOIN b_vic v ON v.n = r.v
              WHERE r.merged_into IS NOT NULL) AS k
        """,
    ),
    (
        "incidents",
        """
        INSERT INTO incidents (id, source_system, source_reference, area, occurred_at,
                               reported_at, received_at, updated_at, created_by, version,
                               original_sha256, review_due_at)
        SELECT id, :system, 'BENCH-' || p || '-' || j, :area, occurred_at, occurred_at,
               occurred_at, occurred_at, 'key:bench', 1, md5(id::text) || md5(id::text),
               occurred_at + interval '6 years'
        FROM b_inc
        """,
    ),
    (
        "incident persons",
        """
        INSERT INTO incident_persons (id, incident_id, person_id, position, ref, role,
                                      given_name, family_name, date_of_birth, unborn,
                                      link_rule, link_basis)
        SELECT gen_random_uuid(), r.incident_id, r.record, 0, 'v1', 'victim',
               'Given' || r.v, 'Family' || r.v, v.dob, false,
               CASE WHEN r.has_pnc THEN 'identifier:pnc'
                    WHEN r.merged_into IS NULL THEN 'new' ELSE 'name_dob' END, 'bench'
        FROM b_vinc r JOIN b_vic v ON v.n = r.v
        UNION ALL
        SELECT gen_random_uuid(), i.id, p.id, 1, 'p1', 'perpetrator',
               'Perp' || p.n, 'Surname' || p.n, NULL, false, 'identifier:pnc', 'bench'
        FROM b_inc i JOIN b_perp p ON p.n = i.p
        UNION ALL
        SELECT gen_random_uuid(), i.id, c.id, 2, 'c1', 'child',
               'Child' || c.n, 'Family' || c.n, NULL, false, 'identifier:nhs', 'bench'
        FROM b_inc i JOIN b_child c ON c.n = i.v
        """,
    ),
    (
        "assessments",
        """
        INSERT INTO assessments (id, incident_id, version, trigger, created_at, created_by,
                                 submission_revision, inputs, result, victim_level, risk_rank,
                                 marac_refer, victim_checklist_id, victim_checklist_version,
                                 victim_checklist_sha256, child_checklist_id,
                                 child_checklist_version, child_checklist_sha256)
        SELECT gen_random_uuid(), id, 1, 'intake', occurred_at, 'key:bench', 1,
               '{}'::jsonb,
               jsonb_build_object('victim', jsonb_build_object('level', lvl, 'marac',
                   jsonb_build_object('refer', refer, 'criteria', '[]'::jsonb)),
                   'children', '[]'::jsonb, 'perpetrator', jsonb_build_object('serial', false)),
               lvl, CASE WHEN refer THEN 2 ELSE 1 END, refer,
               'dash-ric', '1', repeat('0', 64), 'child-risk', '1', repeat('0', 64)
        FROM (SELECT id, occurred_at,
                     (p + j) % 20 = 0 AS refer,
                     CASE WHEN (p + j) % 20 = 0 THEN 'high' ELSE 'medium' END AS lvl
              FROM b_inc) AS s
        """,
    ),
    (
        "flags",
        """
        INSERT INTO flags (id, incident_id, assessment_id, area, type, agency, subject_kind,
                           subject_ref, priority, due_at, status, rule_id, rules_id,
                           rules_version, rules_sha256, reason, because, action, dedupe_key,
                           needs_review, version, created_at, updated_at)
        SELECT gen_random_uuid(), a.incident_id, a.id, :area, 'perpetrator_action', 'police',
               'perpetrator', 'p1', 2, i.occurred_at + interval '1 day',
               CASE WHEN i.occurred_at > CAST(:now AS timestamptz) - interval '100 days'
                    THEN 'open' ELSE 'done' END,
               'perpetrator_action_police', 'default-flags', '1', repeat('0', 64), 'bench',
               '[]'::jsonb, 'bench', 'perpetrator_action:p1:agency=police', false, 1,
               i.occurred_at, i.occurred_at
        FROM assessments a JOIN b_inc i ON i.id = a.incident_id
        WHERE i.occurred_at > CAST(:now AS timestamptz) - interval '150 days'
        """,
    ),
]


LOADED_TABLES = (
    "incidents",
    "incident_persons",
    "persons",
    "person_identifiers",
    "person_match_keys",
    "assessments",
    "flags",
)


def build(url: str, incidents: int) -> dict[str, int]:
    engine = create_engine(url)
    # 1-7 incidents each (4 on average), with a margin; the plan is cut at `incidents`.
    params = {
        "perpetrators": incidents * 26 // 100,
        "victims": VICTIMS,
        "incidents": incidents,
        "now": NOW,
        "system": SYSTEM,
        "area": AREA,
    }
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")
        conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '512MB'")
        # Bulk load: no foreign-key triggers (the data is consistent by construction), and
        # the plain indexes built once afterwards from their own definitions.
        conn.exec_driver_sql("SET LOCAL session_replication_role = replica")
        indexes = conn.execute(
            text(
                "SELECT indexname, indexdef FROM pg_indexes i WHERE schemaname = 'public' "
                "AND tablename = ANY(:tables) AND NOT EXISTS "
                "(SELECT 1 FROM pg_constraint c WHERE c.conname = i.indexname)"
            ),
            {"tables": list(LOADED_TABLES)},
        ).all()
        for name, _ in indexes:
            conn.exec_driver_sql(f'DROP INDEX "{name}"')
        for name, sql in BUILD:
            t = time.perf_counter()
            used = {k: v for k, v in params.items() if f":{k}" in sql}
            conn.execute(text(sql), used)
            print(f"  {name:18s} {time.perf_counter() - t:6.1f} s", flush=True)
        t = time.perf_counter()
        for _, definition in indexes:
            conn.exec_driver_sql(definition)
        print(f"  {len(indexes)} indexes{'':8s} {time.perf_counter() - t:6.1f} s", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        t = time.perf_counter()
        conn.exec_driver_sql("VACUUM ANALYZE")
        print(f"  {'vacuum analyze':18s} {time.perf_counter() - t:6.1f} s")
        counts = {
            table: int(conn.exec_driver_sql(f"SELECT count(*) FROM {table}").scalar_one())  # noqa: S608
            for table in LOADED_TABLES
        }
    engine.dispose()
    print(
        f"built in {time.perf_counter() - started:.0f} s: "
        + ", ".join(f"{t} {c:,}" for t, c in counts.items())
    )
    return counts


def long_histories(url: str, runs: int) -> list[dict[str, Any]]:
    """Serial perpetrators with the most incidents, their first victim and the child."""
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(
            text(
                "SELECT p.n AS p, p.n % :victims AS v FROM b_perp p "
                "WHERE p.k = 7 AND p.n % 20 IN (0, 1) ORDER BY p.n LIMIT :runs"
            ),
            {"victims": VICTIMS, "runs": runs},
        ).mappings()
        found = [dict(r) for r in rows]
        for table in ("b_perp", "b_vic", "b_child", "b_inc", "b_vinc"):
            conn.exec_driver_sql(f"DROP TABLE {table}")
        conn.commit()
    engine.dispose()
    return found


# --------------------------------------------------------------------------- incidents


def body(reference: str, persons: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "source": {"system": SYSTEM, "reference": reference},
        "area": AREA,
        "occurred_at": NOW.isoformat(),
        "persons": persons,
        "relationship": {"victim": "v1", "perpetrator": "p1", "type": "intimate_partner"},
        "victim_checklist": {"instrument": "dash-ric", "answers": MEDIUM},
    }


def fresh_incident(i: int) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:10]
    return body(
        f"NEW-{i}-{tag}",
        [
            {
                "ref": "v1",
                "role": "victim",
                "name": {"given": f"New{tag}", "family": "Person"},
                "date_of_birth": "1990-05-05",
                "identifiers": [{"scheme": "pnc", "value": f"NV/{tag}"}],
            },
            {
                "ref": "p1",
                "role": "perpetrator",
                "name": {"given": f"New{tag}", "family": "Perp"},
                "date_of_birth": "1985-05-05",
                "identifiers": [{"scheme": "pnc", "value": f"NP/{tag}"}],
            },
            {
                "ref": "c1",
                "role": "child",
                "name": {"given": f"New{tag}", "family": "Child"},
                "date_of_birth": "2018-05-05",
                "identifiers": [{"scheme": "nhs", "value": f"8{tag[:9]}"}],
                "child": {"present": True},
            },
        ],
    )


def known_incident(i: int, p: int, v: int) -> dict[str, Any]:
    dob = (datetime(1970, 1, 1) + timedelta(days=v % 12000)).date().isoformat()
    victim: dict[str, Any] = {
        "ref": "v1",
        "role": "victim",
        "name": {"given": f"Given{v}", "family": f"Family{v}"},
        "date_of_birth": dob,
    }
    if v % 2 == 0:
        victim["identifiers"] = [{"scheme": "pnc", "value": f"BV/{v}"}]
    child: dict[str, Any] = {
        "ref": "c1",
        "role": "child",
        "child": {"present": True},
        "name": {"given": f"Child{v}", "family": f"Family{v}"},
        "date_of_birth": "2018-05-05",
    }
    child["identifiers"] = [{"scheme": "nhs", "value": str(9000000000 + v)}] if v % 3 == 0 else []
    return body(
        f"KNOWN-{i}-{uuid.uuid4().hex[:8]}",
        [
            victim,
            {
                "ref": "p1",
                "role": "perpetrator",
                "name": {"given": f"Perp{p}", "family": f"Surname{p}"},
                "identifiers": [{"scheme": "pnc", "value": f"BP/{p}"}],
            },
            child,
        ],
    )


# --------------------------------------------------------------------------- measuring


def measure(
    url: str, pairs: list[dict[str, Any]], runs: int
) -> tuple[list[float], list[float], str]:
    database = Database(url)
    settings = Settings(
        environment="test", database_url=url, log_level="WARNING", write_rate_per_minute=100_000
    )
    app = create_app(settings, database)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    with database.session() as s:
        issued = create_key(s, role="submitter", source_system=SYSTEM)
        s.commit()
    headers = {"Authorization": f"Bearer {issued.secret}"}
    fresh: list[float] = []
    known: list[float] = []
    last_known = ""
    with TestClient(app) as client:
        for i in range(5):  # warm up: definitions snapshotted, caches and pools filled
            assert (
                client.post("/v1/incidents", json=fresh_incident(-i), headers=headers).status_code
                == 201
            )
        for i in range(runs):
            for kind in ("fresh", "known"):
                payload = (
                    fresh_incident(i)
                    if kind == "fresh"
                    else known_incident(i, pairs[i % len(pairs)]["p"], pairs[i % len(pairs)]["v"])
                )
                t = time.perf_counter()
                r = client.post("/v1/incidents", json=payload, headers=headers)
                elapsed = (time.perf_counter() - t) * 1000
                assert r.status_code == 201, r.text
                if kind == "fresh":
                    fresh.append(elapsed)
                else:
                    known.append(elapsed)
                    last_known = r.json()["incident_id"]
                    assert r.json()["assessment"]["perpetrator"]["serial"] is True
    database.dispose()
    return fresh, known, last_known


def explain(url: str, incident_id: str) -> None:
    """EXPLAIN (ANALYZE, BUFFERS) of each query the history and pattern look-ups run."""
    database = Database(url)
    statements: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append((statement, parameters))

    with database.session() as session:
        row = session.get(models.Incident, uuid.UUID(incident_id))
        assert row is not None
        stored = repository.latest_submission_body(session, row.id)
        incident = Incident.model_validate(stored)
        _ = list(row.persons)
        event.listen(database.engine, "before_cursor_execute", capture)
        try:
            records = {p.ref: p.person_id for p in row.persons}
            graph = repository.merge_graph(session, set(records.values()))
            stored = stored_records(
                session, incident, records, graph, incident_id=row.id, occurred_at=row.occurred_at
            )
            history = stored_history(session, stored, History.reported(incident))
            patterns.serial_pattern(stored)
        finally:
            event.remove(database.engine, "before_cursor_execute", capture)
        victim_count = len(history.victim.stored_prior_incidents)
        print(
            f"history of the last (b) incident: victim {victim_count} "
            f"earlier incidents, perpetrator {len(history.perpetrator.stored_incident_ids)} "
            f"incidents with {len(history.perpetrator.stored_victims)} victims, "
            f"{len(statements)} queries"
        )
        conn = session.connection()
        for n, (statement, parameters) in enumerate(statements, start=1):
            plan = (
                conn.exec_driver_sql(
                    "EXPLAIN (ANALYZE, BUFFERS, COSTS OFF) " + statement, parameters
                )
                .scalars()
                .all()
            )
            first = " ".join(statement.split())[:150]
            print(f"\n[{n}] {first}…")
            for line in plan:
                print(f"    {line}")
        session.rollback()
    database.dispose()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=60)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get(
            "TRIAGE_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
        ),
    )
    args = parser.parse_args()
    with fresh_database(args.postgres_url) as url:
        upgrade_to_head(url)
        print(f"building {args.incidents:,} incidents on PostgreSQL ({os.cpu_count()} cores)")
        build(url, args.incidents)
        pairs = long_histories(url, args.runs)
        fresh, known, last_known = measure(url, pairs, args.runs)
        print(f"\nintake latency over {args.runs} runs each (ms), alternating:")
        for name, values in (("(a) no history", fresh), ("(b) long history", known)):
            print(
                f"  {name:18s} median {statistics.median(values):7.1f}   "
                f"p95 {percentile(values, 0.95):7.1f}   min {min(values):7.1f}"
            )
        ratio = statistics.median(known) / statistics.median(fresh)
        verdict = "meets" if ratio <= 1.5 else "EXCEEDS"
        print(f"  ratio of medians (b)/(a): {ratio:.2f} ({verdict} the 1.5x target)")
        explain(url, last_known)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
