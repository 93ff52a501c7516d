"""assessments keep the facts the area report counts in columns of their own

bench/report_bench.py (an area-year over 1,000,000 incidents on PostgreSQL) found most of a
report's time spent reading each assessment's ``inputs`` and ``result`` (some 20 kB of JSON
each, stored compressed out of line) for a handful of facts. Intake now writes those facts
as columns (app/assessments/facts.py) and the report reads only them:

- ``marac_repeat``: the MARAC referral criteria include ``repeat_marac``;
- ``serial_perpetrator``: the assessment found the perpetrator serial;
- ``children_<level>``: the children assessed at each level;
- ``children_present`` … ``children_intervened``, ``children_not_spoken_to``: the children
  recorded as present, who witnessed, were injured, intervened; present or witnessed and
  recorded as not spoken to by the officer;
- ``separation_related``: a recent, planned or perceived separation, or the DASH answer
  "separation in the past year" yes;

and, for what-if (which counts a stored result as the current one only when it was made by
this engine version and the classifier did not raise the victim's level, and should not
read the JSON to find out): ``engine_version``, ``classifier_raised`` (a victim trigger
of stage ``classifier``) and ``victim_score`` (the checklist score: a draft that moves only
score thresholds can change only the incidents at some scores).

The assessments already stored are filled from their JSON in one statement per database
(jsonb paths on PostgreSQL, ``json_each``/``json_extract`` on SQLite), by the same
definitions as app/assessments/facts.py (a test holds the two equal). Assessments whose
content was erased stay NULL (their incidents count in no report). Downgrade drops the
columns.

Revision ID: c4d7e2a9f613
Revises: 8e2f4a6c1b37
Create Date: 2026-12-01 09:00:00.000000+00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4d7e2a9f613"
down_revision: str | None = "8e2f4a6c1b37"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHILD_LEVELS = ("moderate", "moderate_to_serious", "serious", "severe")
CHILD_FACTS = ("present", "witnessed", "injured", "intervened")
COLUMNS: tuple[tuple[str, sa.types.TypeEngine[object]], ...] = (
    ("marac_repeat", sa.Boolean()),
    ("serial_perpetrator", sa.Boolean()),
    *((f"children_{level}", sa.Integer()) for level in CHILD_LEVELS),
    *((f"children_{fact}", sa.Integer()) for fact in (*CHILD_FACTS, "not_spoken_to")),
    ("separation_related", sa.Boolean()),
    ("engine_version", sa.String(length=16)),
    ("classifier_raised", sa.Boolean()),
    ("victim_score", sa.Integer()),
)
SEPARATION = "('recent', 'planned', 'perceived')"


def upgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))
    conn = op.get_bind()
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql(_postgres_backfill())
    else:
        conn.exec_driver_sql(_sqlite_backfill())


def downgrade() -> None:
    with op.batch_alter_table("assessments", schema=None) as batch_op:
        for name, _ in reversed(COLUMNS):
            batch_op.drop_column(name)


# --------------------------------------------------------------------------- PostgreSQL


def _pg_count(document: str, path: str) -> str:
    return f"jsonb_array_length(jsonb_path_query_array({document}, '{path}'))"


def _pg_yes(member: str) -> str:
    return f'(@.{member} == true || @.{member} == "yes")'


def _postgres_backfill() -> str:
    """One UPDATE; each row's JSON is decompressed once (``|| '{}'`` makes an in-memory
    copy, ``OFFSET 0`` keeps the subquery from being folded into the outer one)."""
    children = '$.incident.persons[*] ? (@.role == "child").child ? (@.type() == "object")'
    levels = [_pg_count("j.r", f'$.children[*] ? (@.level == "{level}")') for level in CHILD_LEVELS]
    facts = [_pg_count("j.i", f"{children} ? {_pg_yes(fact)}") for fact in CHILD_FACTS]
    not_spoken_to = _pg_count(
        "j.i",
        f"{children} ? (({_pg_yes('present')} || {_pg_yes('witnessed')}) && "
        '(@.spoken_to_by_officer == false || @.spoken_to_by_officer == "no"))',
    )
    values = [
        "coalesce(jsonb_typeof(j.r #> '{victim,marac,criteria}') = 'array' "
        "AND j.r #> '{victim,marac,criteria}' @> '[\"repeat_marac\"]', false)",
        "coalesce(j.r #> '{perpetrator,serial}' = 'true'::jsonb, false)",
        *levels,
        *facts,
        not_spoken_to,
        f"coalesce(j.i #>> '{{incident,relationship,separation,status}}' IN {SEPARATION}, false) "
        "OR coalesce(j.i #> '{incident,victim_checklist,answers,separation_past_year}' "
        "IN ('true'::jsonb, '\"yes\"'::jsonb), false)",
        "j.r ->> 'engine_version'",
        """jsonb_path_exists(j.r, '$.victim.triggers[*] ? (@.stage == "classifier")')""",
        "CASE WHEN jsonb_typeof(j.r #> '{victim,score}') = 'number' "
        "THEN (j.r #>> '{victim,score}')::int END",
    ]
    names = ", ".join(name for name, _ in COLUMNS)
    return f"""
UPDATE assessments AS a SET ({names}) = (
    SELECT {", ".join(values)}
    FROM (SELECT a.result || '{{}}'::jsonb AS r, a.inputs || '{{}}'::jsonb AS i OFFSET 0) AS j
)
WHERE jsonb_typeof(a.result) = 'object' AND jsonb_typeof(a.inputs) = 'object'
"""  # noqa: S608 (built from this file's constants only)


# --------------------------------------------------------------------------- SQLite


def _sqlite_yes(document: str, path: str) -> str:
    return (
        f"(json_type({document}, '{path}') = 'true' OR json_extract({document}, '{path}') = 'yes')"
    )


def _sqlite_backfill() -> str:
    level_counts = [
        "(SELECT count(*) FROM json_each(result, '$.children') AS c WHERE c.type = 'object' "  # noqa: S608
        f"AND json_extract(c.value, '$.level') = '{level}')"
        for level in CHILD_LEVELS
    ]

    def children(condition: str) -> str:
        return (
            "(SELECT count(*) FROM json_each(inputs, '$.incident.persons') AS p "  # noqa: S608
            "WHERE p.type = 'object' AND json_extract(p.value, '$.role') = 'child' "
            f"AND json_type(p.value, '$.child') = 'object' AND {condition})"
        )

    fact_counts = [children(_sqlite_yes("p.value", f"$.child.{fact}")) for fact in CHILD_FACTS]
    not_spoken_to = children(
        f"({_sqlite_yes('p.value', '$.child.present')} "
        f"OR {_sqlite_yes('p.value', '$.child.witnessed')}) "
        "AND (json_type(p.value, '$.child.spoken_to_by_officer') = 'false' "
        "OR json_extract(p.value, '$.child.spoken_to_by_officer') = 'no')"
    )
    values = [
        "coalesce(json_type(result, '$.victim.marac.criteria') = 'array' AND EXISTS (SELECT 1 "
        "FROM json_each(result, '$.victim.marac.criteria') AS m WHERE m.value = 'repeat_marac'), 0)",
        "coalesce(json_type(result, '$.perpetrator.serial') = 'true', 0)",
        *level_counts,
        *fact_counts,
        not_spoken_to,
        "coalesce(json_extract(inputs, '$.incident.relationship.separation.status') IN "
        f"{SEPARATION}, 0) OR coalesce("
        f"{_sqlite_yes('inputs', '$.incident.victim_checklist.answers.separation_past_year')}, 0)",
        "json_extract(result, '$.engine_version')",
        "EXISTS (SELECT 1 FROM json_each(result, '$.victim.triggers') AS t "
        "WHERE json_extract(t.value, '$.stage') = 'classifier')",
        "CASE WHEN json_type(result, '$.victim.score') = 'integer' "
        "THEN json_extract(result, '$.victim.score') END",
    ]
    assignments = ",\n    ".join(
        f"{name} = {value}" for (name, _), value in zip(COLUMNS, values, strict=True)
    )
    return f"""
UPDATE assessments SET
    {assignments}
WHERE json_type(result) = 'object' AND json_type(inputs) = 'object'
"""  # noqa: S608 (built from this file's constants only)
