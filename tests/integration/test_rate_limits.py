"""The shared rate-limit buckets on the real database: exact under racing callers, all or
nothing across several buckets, and full again with time."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest

from shared.crypto.user_index import UserIndex
from shared.db import RequestPool, create_pool
from shared.http.problems import Problem
from shared.http.ratelimit import Bucket, Limits, Rate, RateLimiter
from shared.store import migrate
from tests.support.infra import Infra

SLOW = Rate(per_second=0.001, burst=5)  # nothing refills while a test runs


@asynccontextmanager
async def _limiter(infra: Infra) -> AsyncIterator[tuple[RateLimiter, RequestPool]]:
    async with infra.database(migrate.store_migrations()) as dsn:
        pool = await create_pool(dsn, min_size=2, max_size=20)
        try:
            async with pool.acquire() as conn:
                await migrate.apply(conn, [], migrate.store_functions())
            limits = Limits(SLOW, SLOW, SLOW, SLOW)
            yield RateLimiter(pool, limits, UserIndex(b"k" * 32)), pool
        finally:
            await pool.close()


async def _outcome(limiter: RateLimiter, buckets: list[Bucket]) -> str:
    try:
        await limiter.take(buckets)
    except Problem as problem:
        return "refused" if problem.code == "rate_limited" else problem.code
    return "taken"


async def test_racing_callers_get_exactly_the_burst(infra: Infra) -> None:
    async with _limiter(infra) as (limiter, _):
        bucket = [Bucket("key", f"key:{uuid.uuid4()}", SLOW)]
        outcomes = await asyncio.gather(*(_outcome(limiter, bucket) for _ in range(40)))
        assert outcomes.count("taken") == SLOW.burst


async def test_a_refusal_takes_from_no_bucket(infra: Infra) -> None:
    async with _limiter(infra) as (limiter, _):
        key = Bucket("key", "key:a", Rate(0.001, 3))
        tenant = Bucket("tenant", "tenant:t", Rate(0.001, 1))
        assert await _outcome(limiter, [key, tenant]) == "taken"
        # the tenant refuses: the key's bucket must not pay for it
        for _ in range(3):
            assert await _outcome(limiter, [key, tenant]) == "refused"
        assert await _outcome(limiter, [key]) == "taken"
        assert await _outcome(limiter, [key]) == "taken"
        assert await _outcome(limiter, [key]) == "refused"
        with pytest.raises(Problem) as refused:
            await limiter.take([key, tenant])
        assert refused.value.extra["limited_by"] == ["key", "tenant"]
        assert int(refused.value.headers["Retry-After"]) >= 1


async def test_a_bucket_refills_at_its_rate(infra: Infra) -> None:
    async with _limiter(infra) as (limiter, pool):
        fast = Bucket("key", "key:fast", Rate(50, 2))  # one more every 20 ms
        standing = await limiter.take([fast])
        assert standing is not None and standing.remaining == 1
        assert await _outcome(limiter, [fast]) == "taken"
        async with pool.acquire() as conn:  # as if 100 ms had passed
            await conn.execute("UPDATE rate_buckets SET tat = tat - interval '100 ms'")
        assert await _outcome(limiter, [fast]) == "taken"
        assert await _outcome(limiter, [fast]) == "taken"
        assert await _outcome(limiter, [fast]) == "refused"
