"""With TRIAGE_REDIS_URL the write rate limit is one window per principal for every
process and replica; without Redis each process keeps its own, and an outage of Redis
falls back to that rather than stopping intake."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import redis
from structlog.testing import capture_logs

from app.auth.ratelimit import KEY_PREFIX, LocalRateLimiter, RedisRateLimiter, rate_limiter


def test_two_replicas_share_one_window_per_principal(redis_url: str) -> None:
    principal = f"key:{uuid.uuid4()}"
    other = f"key:{uuid.uuid4()}"

    async def main() -> list[float | None]:
        a, b = RedisRateLimiter(3, redis_url), RedisRateLimiter(3, redis_url)
        try:
            hits = [await (a if n % 2 else b).hit(principal) for n in range(4)]
            hits.append(await a.hit(other))  # another principal has its own window
            return hits
        finally:
            await a.close()
            await b.close()

    first, second, third, fourth, other_first = asyncio.run(main())
    assert (first, second, third) == (None, None, None)
    assert fourth is not None
    assert 0 < fourth <= 60
    assert other_first is None


def test_the_store_holds_a_hash_of_the_principal_never_its_id(redis_url: str) -> None:
    principal = f"jwt:officer-{uuid.uuid4().hex}"

    async def main() -> None:
        limiter = RedisRateLimiter(5, redis_url)
        try:
            assert await limiter.hit(principal) is None
        finally:
            await limiter.close()

    asyncio.run(main())
    # The store is shared (other workers, other runs): assert on this test's key only,
    # and on every key for the absence of the id.
    window = KEY_PREFIX + hashlib.sha256(principal.encode("utf-8")).hexdigest()
    client = redis.Redis.from_url(redis_url)
    try:
        assert 0 < client.pttl(window) <= 60_000
        assert not any(principal in k.decode() for k in client.scan_iter())
    finally:
        client.close()


def test_an_unreachable_store_falls_back_to_the_process_window() -> None:
    async def main() -> list[float | None]:
        limiter = RedisRateLimiter(2, "redis://127.0.0.1:1/0")
        try:
            return [await limiter.hit("key:p") for _ in range(3)]
        finally:
            await limiter.close()

    with capture_logs() as logs:
        hits = asyncio.run(main())
    assert hits[:2] == [None, None]
    assert hits[2] is not None
    assert {e["event"] for e in logs} == {"rate_limit_store_unavailable"}
    assert all(set(e) <= {"event", "log_level", "error_type"} for e in logs)


def test_without_a_redis_url_each_process_keeps_its_own_window() -> None:
    assert isinstance(rate_limiter(10, None), LocalRateLimiter)
