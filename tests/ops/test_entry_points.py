"""The usual ways to run a FastAPI service work: ``uvicorn app.main:app`` and
``fastapi run`` find the module-level ``app`` (built from the environment on first use,
never at import), and ``/`` leads to the screens. On a migrated SQLite file and on a
PostgreSQL database of its own."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.db import Database
from tests.ops.test_shutdown import free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _serve_and_check(command: list[str], port: int, url: str) -> None:
    env = {**os.environ, "TRIAGE_DATABASE_URL": url, "TRIAGE_ENVIRONMENT": "test"}
    server = subprocess.Popen(  # noqa: S603 - our own interpreter's tools
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 40
        while True:
            try:
                ready = httpx.get(f"{base}/readyz", timeout=1)
                if ready.status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "the server did not become ready"
            assert server.poll() is None, "the server exited"
            time.sleep(0.2)
        root = httpx.get(f"{base}/", follow_redirects=False)
        assert root.status_code == 303
        assert root.headers["location"] == "/ui/"
        assert httpx.get(f"{base}/v1/incidents/x").status_code == 401  # the whole API
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_uvicorn_and_fastapi_run_find_the_app(fresh_database: Database, backend: str) -> None:
    # One server per backend (each takes seconds to start): uvicorn on one, fastapi on
    # the other; both load the same attribute.
    port = free_port()
    if backend == "sqlite":
        command = [str(BIN / "uvicorn"), "app.main:app", "--port", str(port)]
    else:
        command = [str(BIN / "fastapi"), "run", "app/main.py", "--port", str(port)]
    _serve_and_check(command, port, fresh_database.url)


def test_importing_the_module_builds_no_application() -> None:
    code = "import app.main as m\nprint('app' in vars(m), 'app' in dir(m))\n"
    out = subprocess.run(  # noqa: S603 - our own interpreter
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout.split()
    assert out == ["False", "True"]
