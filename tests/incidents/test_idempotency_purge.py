"""Expired idempotency keys are purged; live ones are kept."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from app.cli import main
from app.config import get_settings
from app.db import Database, utcnow
from app.idempotency.models import IdempotencyKey
from app.idempotency.service import remember
from app.ops.migrations import upgrade_to_head


def test_purge_removes_only_expired_keys(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    url = f"sqlite:///{tmp_path / 'idem.db'}"
    upgrade_to_head(url)
    db = Database(url)
    now = utcnow()
    with db.session() as s:
        for key, created in (("old", now - timedelta(days=8)), ("new", now)):
            remember(
                s,
                principal_id="key:test",
                key=key,
                route="POST /v1/incidents",
                fingerprint="0" * 64,
                status_code=201,
                body={},
                headers={"Location": "/v1/incidents/x"},
                incident_id=None,
                audit_subject={},
                retention_days=7,
                now=created,
            )
        s.commit()
    monkeypatch.setenv("TRIAGE_DATABASE_URL", url)
    get_settings.cache_clear()
    try:
        assert main(["idempotency", "purge"]) == 0
    finally:
        get_settings.cache_clear()
    with db.session() as s:
        assert [k.key for k in s.scalars(select(IdempotencyKey))] == ["new"]
    db.dispose()
