"""All SQL for assessments, judgements and definition snapshots."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from app.assessments.facts import report_facts, result_facts
from app.assessments.models import Assessment, DefinitionSnapshot, Judgement
from app.db import insert_rows, table_of


def record_snapshots(session: Session, rows: Sequence[Mapping[str, Any]]) -> None:
    """Insert the definitions not stored yet (one statement; existing hashes are kept)."""
    if not rows:
        return
    dialect = session.get_bind().dialect.name
    stmt = (pg_insert if dialect == "postgresql" else sqlite_insert)(table_of(DefinitionSnapshot))
    session.execute(stmt.on_conflict_do_nothing(index_elements=["sha256"]), list(rows))


def insert_assessment(session: Session, row: Mapping[str, Any]) -> None:
    """Insert one assessment with the facts the area report counts and those a what-if
    checks, taken from its ``inputs`` and ``result`` here so that no assessment is written
    without them."""
    facts = {**report_facts(row["inputs"], row["result"]), **result_facts(row["result"])}
    insert_rows(session, Assessment, [{**row, **facts}])


def insert_judgement(session: Session, row: Mapping[str, Any]) -> None:
    insert_rows(session, Judgement, [row])


def next_version(session: Session, incident_id: uuid.UUID) -> int:
    current = session.scalar(
        select(func.max(Assessment.version)).where(Assessment.incident_id == incident_id)
    )
    return int(current or 0) + 1


def highest_rank(session: Session, incident_id: uuid.UUID) -> int:
    """The highest risk rank any stored version of the incident reached."""
    return int(
        session.scalar(
            select(func.max(Assessment.risk_rank)).where(Assessment.incident_id == incident_id)
        )
        or 0
    )


def judgements_of(session: Session, incident_id: uuid.UUID) -> list[Judgement]:
    return list(
        session.scalars(
            select(Judgement).where(Judgement.incident_id == incident_id).order_by(Judgement.at)
        )
    )


def get(session: Session, assessment_id: uuid.UUID) -> Assessment | None:
    return session.get(Assessment, assessment_id)


def versions(session: Session, incident_id: uuid.UUID) -> list[Assessment]:
    """Every version of the incident's assessment, newest first."""
    return list(
        session.scalars(
            select(Assessment)
            .where(Assessment.incident_id == incident_id)
            .order_by(Assessment.version.desc())
        )
    )


def snapshot(session: Session, sha256: str) -> DefinitionSnapshot | None:
    return session.get(DefinitionSnapshot, sha256)
