"""The README's walkthrough, run as written against a real server, so that it cannot go stale.

The ``sh`` blocks between ``<!-- walkthrough:start -->`` and ``<!-- walkthrough:end -->`` run
in order, in one ``bash`` with ``set -euo pipefail``, against the service in a process of its
own (``tests/support/service.py``) on a database of the test's own (SQLite, and PostgreSQL
when configured), with the demo keys made as ``scripts/dev.py start`` makes them
(``triage keys demo --env-file var/demo-keys.env``).
Every ``curl`` in them uses ``--fail-with-body``, so any HTTP error fails the test. The
classifier blocks (``walkthrough-classifier``) need no database and run once, smaller.

What is substituted, and nothing else: the base URL (``http://127.0.0.1:8000``) by the test
server's, ``.venv/bin/triage`` and ``.venv/bin/python`` by this interpreter (the shared
virtual environment's ``triage`` may be installed from another checkout), and the classifier's
``N=5000`` by ``TRIAGE_SYNTH_N`` (default 600). The commands run in a scratch directory
holding ``tests/data/incident.example.json``, so ``var/`` is the test's own.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.db import Database
from tests.support.service import running_service

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DEMO_URL = "http://127.0.0.1:8000"
SYNTH_LINE = "N=5000"


def walkthrough(marker: str) -> list[str]:
    """The ``sh`` blocks between ``<!-- MARKER:start -->`` and ``<!-- MARKER:end -->``."""
    text = README.read_text(encoding="utf-8")
    match = re.search(rf"<!-- {marker}:start -->(.*?)<!-- {marker}:end -->", text, re.S)
    assert match, f"README.md has no {marker} section"
    blocks = re.findall(r"^```sh\n(.*?)^```$", match.group(1), re.S | re.M)
    assert blocks, f"the {marker} section has no sh blocks"
    return [str(b) for b in blocks]


def as_test(blocks: list[str], base_url: str) -> str:
    python = sys.executable
    script = "\n".join(blocks)
    script = script.replace(DEMO_URL, base_url)
    commands = {"triage": f"{python} -m app.cli", "python": python}
    script = re.sub(
        r"(?<![\w/])\.venv/bin/(triage|python)\b", lambda m: commands[m.group(1)], script
    )
    return "set -euo pipefail\n" + script


def scratch(tmp_path: Path) -> Path:
    """A directory laid out as the clone is for the commands: the example, a var/."""
    work = tmp_path / "work"
    (work / "tests" / "data").mkdir(parents=True)
    (work / "var").mkdir()
    shutil.copy(ROOT / "tests" / "data" / "incident.example.json", work / "tests" / "data")
    return work


def environment(database_url: str | None) -> dict[str, str]:
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "TRIAGE_ENVIRONMENT": "development",  # as `start` runs it
        "TRIAGE_LOG_LEVEL": "WARNING",
    }
    if database_url:
        env["TRIAGE_DATABASE_URL"] = database_url
    return env


def run_bash(script: str, cwd: Path, env: dict[str, str], timeout: float) -> str:
    result = subprocess.run(  # noqa: S603 - bash running the README's own commands
        ["bash", "-c", script],  # noqa: S607
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    assert result.returncode == 0, (
        f"the walkthrough failed (exit {result.returncode})\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}"
    )
    return result.stdout


@pytest.fixture
def server(fresh_database: Database, tmp_path: Path) -> Iterator[tuple[str, Path, dict[str, str]]]:
    """The service as `start` leaves it: migrated, demo keys in var/demo-keys.env, serving."""
    env = environment(fresh_database.url)
    work = scratch(tmp_path)
    keys = subprocess.run(
        [sys.executable, "-m", "app.cli", "keys", "demo", "--env-file", "var/demo-keys.env"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert keys.returncode == 0, keys.stdout + keys.stderr
    with running_service(fresh_database.url, env={"TRIAGE_ENVIRONMENT": "development"}) as svc:
        yield svc.base_url, work, env


def test_every_readme_flow_runs_against_the_service(
    server: tuple[str, Path, dict[str, str]],
) -> None:
    base, work, env = server
    env_file = work / "var" / "demo-keys.env"
    assert env_file.stat().st_mode & 0o077 == 0  # secrets: readable by the owner only
    names = {
        line.split("=", 1)[0]
        for line in env_file.read_text().splitlines()
        if line and not line.startswith("#")
    }
    blocks = walkthrough("walkthrough")
    used = set(re.findall(r"\$([A-Z]+_KEY)\b", "\n".join(blocks)))
    assert used <= names, f"the walkthrough uses keys start does not write: {used - names}"
    out = run_bash(as_test(blocks, base), work, env, timeout=240)
    lines = out.splitlines()
    assert "400" in lines  # the read without X-Purpose
    assert "true" in lines  # reproduce: identical
    assert "done" in lines
    assert "not_required" in lines
    assert "2" in lines  # the judgement's assessment version


def test_the_classifier_flow_runs(tmp_path: Path) -> None:
    blocks = walkthrough("walkthrough-classifier")
    assert any(SYNTH_LINE in b.splitlines() for b in blocks), f"no `{SYNTH_LINE}` line"
    n = os.environ.get("TRIAGE_SYNTH_N", "600")
    script = as_test(blocks, DEMO_URL).replace(f"\n{SYNTH_LINE}\n", f"\nN={n}\n")
    work = scratch(tmp_path)
    out = run_bash(script, work, environment(None), timeout=300)
    assert (work / "var" / "models" / "my-model" / "1" / "manifest.json").exists()
    assert "SYNTHETIC DATA" in out
