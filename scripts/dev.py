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
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
PYTHON = BIN / "python"


def run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env, check=False)
    if result.returncode != 0:
        sys.exit(result.returncode)


def ensure_environment(extra: str) -> None:
    if sys.version_info[:2] != (3, 11):
        sys.exit(f"Python 3.11 is required (this is {sys.version.split()[0]}).")
    if not PYTHON.exists():
        print(f"creating virtual environment in {VENV}")
        venv.EnvBuilder(with_pip=True, clear=False).create(VENV)
    digest = hashlib.sha256()
    for name in ("pyproject.toml", "constraints.txt"):
        digest.update((ROOT / name).read_bytes())
    stamp = VENV / f".installed-{extra or 'base'}"
    if stamp.exists() and stamp.read_text() == digest.hexdigest():
        return
    print("installing dependencies (pinned by constraints.txt)")
    run(PYTHON, "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    target = f".[{extra}]" if extra else "."
    run(PYTHON, "-m", "pip", "install", "--quiet", "-c", "constraints.txt", "-e", target)
    stamp.write_text(digest.hexdigest())


def start() -> None:
    ensure_environment("")
    env = {**os.environ, "TRIAGE_ENVIRONMENT": os.environ.get("TRIAGE_ENVIRONMENT", "development")}
    (ROOT / "var").mkdir(exist_ok=True)
    run(PYTHON, "-m", "app.cli", "db", "upgrade", env=env)
    run(PYTHON, "-m", "app.cli", "keys", "demo", env=env)
    print("\nScreens:   http://127.0.0.1:8000/ui/  (sign in with a key above)")
    print("API docs:  http://127.0.0.1:8000/docs")
    print("Try:       curl -H 'Authorization: Bearer <submitter key>' ... (see README)\n")
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
