"""Per-principal rate limit on writes (OWASP API4): a sliding one-minute window.

State is per process: with several replicas each enforces its own window, so the
effective limit is the configured rate times the number of replicas. That is enough to
stop a runaway client; a shared store would be needed for an exact global limit.
"""

from __future__ import annotations

import math
import threading
import time
from collections import defaultdict, deque

WINDOW_SECONDS = 60.0


class RateLimiter:
    def __init__(self, per_minute: int, clock: object = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    def hit(self, key: str) -> float | None:
        """Count a request; returns None if allowed, else seconds until one would be."""
        if self.per_minute <= 0:
            return None
        now: float = self._clock()  # type: ignore[operator]
        with self._lock:
            hits = self._hits[key]
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            if len(hits) >= self.per_minute:
                return max(hits[0] + WINDOW_SECONDS - now, 0.0)
            hits.append(now)
            return None


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
