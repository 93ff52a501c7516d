#!/usr/bin/env python3
"""The README's two commands, needing nothing but Python 3.11.

    python3.11 scripts/dev.py start   # venv, install, migrate var/triage.db, demo keys, serve
    python3.11 scripts/dev.py test    # venv, install (with dev tools), run the whole suite

Installs are reproducible (``constraints.txt`` pins every package) and skipped when
``pyproject.toml`` and ``constraints.txt`` have not changed since the last install.
Extra arguments after ``test`` go to pytest.

``test`` runs the suite on two pytest-xdist workers (fewer on a one-core machine). Set
``TRIAGE_TEST_WORKERS`` to another number (``0``: one process, no workers), or pass
``-n``/``--numprocesses`` yourself, which wins.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import time
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"
BASE_URL = "http://127.0.0.1:8000"
# The demo keys as shell variables (`source var/demo-keys.env`); var/ is git-ignored.
DEMO_KEYS_FILE = "var/demo-keys.env"


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def step(text: str) -> None:
    """One line per step, flushed at once, so that nobody waits in front of a silent screen."""
    print(f"==> {text}", flush=True)


def installed_digest() -> str:
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    return digest.hexdigest()


def pip(*args: str) -> None:
    """pip with its own progress: a bar on a terminal, a line per package elsewhere."""
    bar = "on" if sys.stdout.isatty() else "off"
    run(PYTHON, "-m", "pip", *args, "--progress-bar", bar, "--disable-pip-version-check")


def ensure_environment(extra: str) -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Python 3.11 is required (this is {sys.version.split()[0]}).")
    if not PYTHON.exists():
        step(f"creating the virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    digest = installed_digest()
    # The dev install is a superset of the base one: after `test`, `start` installs nothing.
    stamps = [VENV / f".installed-{extra}"] if extra else [VENV / ".installed-base"]
    if not extra:
        stamps.append(VENV / ".installed-dev")
    if any(s.exists() and s.read_text() == digest for s in stamps):
        step(f"environment up to date ({VENV.name}; pyproject.toml and constraints.txt unchanged)")
        return
    pinned = sum(1 for line in (ROOT / "constraints.txt").read_text().splitlines() if "==" in line)
    started = time.monotonic()
    step("upgrading pip")
    pip("install", "--upgrade", "pip")
    target = f".[{extra}]" if extra else "."
    step(
        f"installing {target} and its dependencies (at most {pinned} packages, pinned by "
        "constraints.txt; a few minutes the first time)"
    )
    pip("install", "-c", "constraints.txt", "-e", target)
    stamps[0].write_text(digest)
    step(f"installed in {time.monotonic() - started:.0f} s")


def start() -> None:
    started = time.monotonic()
    ensure_environment("")
    env = {**os.environ, "TRIAGE_ENVIRONMENT": os.environ.get("TRIAGE_ENVIRONMENT", "development")}
    (ROOT / "var").mkdir(exist_ok=True)
    step("migrating the database (var/triage.db unless TRIAGE_DATABASE_URL is set)")
    run(PYTHON, "-m", "app.cli", "db", "upgrade", env=env)
    step("making demo keys")
    run(PYTHON, "-m", "app.cli", "keys", "demo", "--env-file", DEMO_KEYS_FILE, env=env)
    print(f"\nScreens:   {BASE_URL}/ui/  (sign in with a key above)")
    print(f"API docs:  {BASE_URL}/docs")
    print(
        f'Try:       source {DEMO_KEYS_FILE}; curl -H "Authorization: Bearer $SUBMITTER_KEY" '
        "... (README: Walkthrough)"
    )
    elapsed = time.monotonic() - started
    step(f"starting the service on {BASE_URL} ({elapsed:.0f} s so far; Ctrl-C stops it)")
    os.execve(str(PYTHON), [str(PYTHON), "-m", "app.cli", "serve"], env)


def chooses_workers(pytest_args: list[str]) -> bool:
    """Whether the arguments already say how many xdist workers (or none) to use."""
    return any(
        arg in ("-n", "--numprocesses", "no:xdist", "-pno:xdist")
        or arg.startswith("--numprocesses=")
        or (arg.startswith("-n") and not arg.startswith("--"))
        for arg in pytest_args
    )


def workers() -> str:
    """``TRIAGE_TEST_WORKERS``, else two workers capped at the cores (none on one core)."""
    wanted = os.environ.get("TRIAGE_TEST_WORKERS", "").strip()
    if wanted:
        return wanted
    cores = os.cpu_count() or 1
    return "2" if cores >= 2 else "0"


def test(pytest_args: list[str]) -> None:
    ensure_environment("dev")
    if not chooses_workers(pytest_args):
        pytest_args = ["-n", workers(), *pytest_args]
    result = subprocess.run([str(PYTHON), "-m", "pytest", *pytest_args], cwd=ROOT, check=False)
    sys.exit(result.returncode)


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] not in ("start", "test"):
        sys.exit(__doc__)
    if sys.argv[1] == "start":
        start()
    else:
        test(sys.argv[2:])


if __name__ == "__main__":
    main()
