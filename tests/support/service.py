"""The service as a real uvicorn process on a fresh database, for tests that need real
sockets, real threads and real concurrency (bursts, replicas, shutdown)."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass(frozen=True)
class RunningService:
    base_url: str
    process: subprocess.Popen[bytes]


@contextlib.contextmanager
def running_service(
    database_url: str, *, workers: int = 1, env: dict[str, str] | None = None
) -> Iterator[RunningService]:
    """Start ``uvicorn app.main:create_app`` and wait until ``/readyz`` answers 200."""
    port = free_port()
    full_env = {
        **os.environ,
        "TRIAGE_DATABASE_URL": database_url,
        "TRIAGE_ENVIRONMENT": "test",
        "TRIAGE_LOG_LEVEL": "WARNING",
        **(env or {}),
    }
    process = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "uvicorn", "app.main:create_app", "--factory",
         "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
         "--no-access-log", "--no-server-header", "--log-level", "warning",
         "--timeout-graceful-shutdown", "5"],
        cwd=ROOT,
        env=full_env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("the service did not become ready")
            time.sleep(0.2)
        yield RunningService(base, process)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
