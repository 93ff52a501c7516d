"""Migrations that rebuild a table other rows refer to run on a database that holds data.

SQLite alters a column by rebuilding the table; ``flags`` is referred to by ``flag_events``
and ``disclosures``, so the rebuild only works with foreign keys unenforced for the
migrations' transaction (``migrations/env.py``), and every reference must hold after it.
Run on a database of its own (real commits), on both databases; invented test data.
"""

from __future__ import annotations

from typing import Any

import pytest
from alembic import command
from fastapi.testclient import TestClient
from sqlalchemy import delete, func, select

from app.auth.keys import create_key
from app.auth.models import ApiKey
from app.config import Settings
from app.db import Database
from app.flags.models import Flag, FlagEvent
from app.ops.migrations import alembic_config
from tests.conftest import build_app, example_incident

BEFORE_ADULT_SOCIAL_CARE = "ccad4dd4b44b"


def _counts(database: Database) -> tuple[int, int]:
    with database.session() as s:
        return (
            int(s.scalar(select(func.count()).select_from(Flag)) or 0),
            int(s.scalar(select(func.count()).select_from(FlagEvent)) or 0),
        )


def test_a_migration_that_rebuilds_flags_keeps_them_and_their_history(
    fresh_database: Database, make_key_fresh: Any
) -> None:
    database = Database(fresh_database.url)
    app = build_app(Settings(environment="test", database_url=fresh_database.url), database, None)
    with TestClient(app) as client:
        r = client.post("/v1/incidents", json=example_incident(), headers=make_key_fresh(database))
        assert r.status_code == 201, r.text
    with database.session() as s:
        create_key(s, role="agency", agency="adult_social_care", areas=["E09000018"])
        s.commit()
    database.dispose()
    before = _counts(fresh_database)
    assert before[0] > 0
    fresh_database.dispose()
    config = alembic_config(fresh_database.url)

    # The agency's key cannot be held by the earlier schema: downgrading refuses, and
    # changes nothing.
    with pytest.raises(RuntimeError, match="adult_social_care"):
        command.downgrade(config, BEFORE_ADULT_SOCIAL_CARE)
    with fresh_database.session() as s:
        s.execute(delete(ApiKey).where(ApiKey.agency == "adult_social_care"))
        s.commit()
    fresh_database.dispose()

    command.downgrade(config, BEFORE_ADULT_SOCIAL_CARE)
    command.upgrade(config, "head")
    assert _counts(fresh_database) == before
