"""The machine to itself, for tests whose verdict depends on how fast it answers.

Under pytest-xdist the workers of one run share the machine's cores. Most tests do not
care; a few assert wall-clock budgets (``/livez`` within 1 s during a burst against a real
server, a refusal "at once") and would measure the other worker rather than the code.
Those are marked ``@pytest.mark.exclusive``: every test of the run holds a shared lock
while it runs (setup, call and teardown), an exclusive test holds it exclusively, so the
other workers wait between two of their tests until it is done.

A readers-writer lock on two ``flock`` files in the run's own temporary directory (so two
runs on one machine do not wait for each other). The gate gives a waiting exclusive test
precedence: it holds the gate while it waits, and a shared holder passes the gate on its
way in, so workers that go from one test to the next cannot keep it out for ever. A
worker that dies releases its locks with its file descriptors.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from collections.abc import Iterator
from pathlib import Path


class MachineLock:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._gate = os.open(directory / "machine.gate", os.O_RDWR | os.O_CREAT, 0o600)
        self._lock = os.open(directory / "machine.lock", os.O_RDWR | os.O_CREAT, 0o600)

    @contextlib.contextmanager
    def shared(self) -> Iterator[None]:
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_SH)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        fcntl.flock(self._gate, fcntl.LOCK_EX)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX)
        finally:
            fcntl.flock(self._gate, fcntl.LOCK_UN)
        try:
            yield
        finally:
            fcntl.flock(self._lock, fcntl.LOCK_UN)

    def close(self) -> None:
        os.close(self._gate)
        os.close(self._lock)
