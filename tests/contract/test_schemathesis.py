"""Schemathesis against the real service, on both databases: every check, every phase
(coverage, fuzzing from the JSON Schema, and the stateful phase), each operation with the
key of a role that may call it (tests/contract/schemathesis.toml). No failure of any
kind: no server error, no response outside its schema, no schema-valid request refused
(except where the configuration names a rule JSON Schema cannot state), no schema-invalid
request accepted.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.auth.keys import create_key
from app.db import Database
from tests.conftest import TempDatabase
from tests.support.service import RunningService, running_service

pytestmark = pytest.mark.slow

CONFIG = Path(__file__).with_name("schemathesis.toml")
ST = Path(sys.executable).with_name("st")
ROLES = {
    "submitter": {"source_system": "force-a-records"},
    "triage": {"areas": ["E09000018"]},
    "auditor": {},
    "admin": {},
    "agency": {"areas": ["E09000018"], "agency": "csc"},
}


@pytest.fixture
def service(backend: str, tmp_path: Path) -> Iterator[tuple[RunningService, dict[str, str]]]:
    temp = TempDatabase(backend, tmp_path, "st")
    database = Database(temp.url)
    keys = {}
    with database.session() as s:
        for role, extra in ROLES.items():
            issued = create_key(s, role=role, **extra)  # type: ignore[arg-type]
            keys[f"ST_{role.upper()}_KEY"] = issued.secret
        s.commit()
    # The write rate limit would answer 429 to the generated writes; it is tested elsewhere.
    with running_service(temp.url, env={"TRIAGE_WRITE_RATE_PER_MINUTE": "0"}) as running:
        yield running, keys
    database.dispose()
    temp.drop()


def test_schemathesis_finds_nothing(
    service: tuple[RunningService, dict[str, str]], tmp_path: Path
) -> None:
    running, keys = service
    result = subprocess.run(  # noqa: S603 - our own interpreter's schemathesis
        [
            str(ST),
            "--config-file",
            str(CONFIG),
            "run",
            f"{running.base_url}/openapi.json",
            "--header",
            "X-Purpose: triage",
            "--no-color",
        ],
        cwd=tmp_path,
        env={**os.environ, **keys},
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    assert "No issues found" in result.stdout
