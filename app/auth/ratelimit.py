"""Per-principal rate limit on writes (OWASP API4): a sliding one-minute window.

Two implementations of one interface (``await limiter.hit(principal_id)``: None when the
write may go ahead, else the seconds until one would be allowed):

- ``LocalRateLimiter``: state in the process. With several workers or replicas each keeps
  its own window, so the effective limit is the rate times the number of processes.
- ``RedisRateLimiter`` (``TRIAGE_REDIS_URL``): one window per principal in Redis, shared by
  every process and replica, so the limit holds for the service as a whole. The window is
  a sorted set of hit times, trimmed and counted in one Lua script run atomically by Redis
  against Redis's own clock (replicas' clocks may differ). Keys are a hash of the principal
  id, never the id itself, and expire with the window. If Redis cannot be reached the
  limiter falls back to the process's own window and logs it (by type only): an outage of
  Redis must not stop intake, and a runaway client is still slowed by each process.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import defaultdict, deque
from typing import Protocol

import redis.asyncio as redis
import structlog
from redis.exceptions import RedisError

WINDOW_SECONDS = 60.0
KEY_PREFIX = "triage:writes:"

log = structlog.get_logger(__name__)


class RateLimiter(Protocol):
    per_minute: int

    async def hit(self, key: str) -> float | None: ...

    async def close(self) -> None: ...


class LocalRateLimiter:
    def __init__(self, per_minute: int, clock: object = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = defaultdict(deque)
        self._lock = threading.Lock()

    async def hit(self, key: str) -> float | None:
        return self.hit_now(key)

    def hit_now(self, key: str) -> float | None:
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

    async def close(self) -> None:
        return None


# KEYS[1]: the window; ARGV: window seconds, limit, a unique member. Returns -1 when the
# hit is counted, else the milliseconds until the oldest hit leaves the window.
_SLIDING_WINDOW = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1]) * 1000
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""


class RedisRateLimiter:
    def __init__(self, per_minute: int, url: str) -> None:
        self.per_minute = per_minute
        self._client = redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        self._script = self._client.register_script(_SLIDING_WINDOW)
        self._fallback = LocalRateLimiter(per_minute)

    async def hit(self, key: str) -> float | None:
        if self.per_minute <= 0:
            return None
        name = KEY_PREFIX + hashlib.sha256(key.encode("utf-8")).hexdigest()
        try:
            wait_ms = await self._script(
                keys=[name], args=[int(WINDOW_SECONDS), self.per_minute, secrets.token_hex(8)]
            )
        except RedisError as exc:
            log.warning("rate_limit_store_unavailable", error_type=type(exc).__name__)
            return self._fallback.hit_now(key)
        return None if int(wait_ms) < 0 else max(int(wait_ms) / 1000, 0.0)

    async def close(self) -> None:
        await self._client.aclose()


def rate_limiter(per_minute: int, redis_url: str | None) -> RateLimiter:
    if redis_url:
        return RedisRateLimiter(per_minute, redis_url)
    return LocalRateLimiter(per_minute)


def retry_after_header(seconds: float) -> str:
    return str(max(1, math.ceil(seconds)))
