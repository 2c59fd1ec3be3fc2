"""Rate limits shared by every replica: GCRA token buckets in PostgreSQL, one statement a
request (`qunma_rate_take`, shared/store/functions/rate_take.sql).

Who is limited, and by what:
- an authenticated caller by its API key (a rate the key was created with, or the
  deployment's) and by its tenant, on every `/v1` route of both services, so one platform
  backend calling for many people is one caller, and one tenant cannot starve the others;
- a person by their user id (kept only as a keyed `UserIndex` value), on scans and joins;
- the anonymous landing page by the client's address (an IPv6 /64 counts as one address).
The log token (service-to-service catch-up) is not limited.

Every answer of a limited route says where the caller stands (the IETF draft's
`RateLimit-Policy` and `RateLimit` fields); a refusal is `429 rate_limited` with
`Retry-After`.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.crypto.user_index import UserIndex
from shared.db import RequestPool
from shared.http.problems import Problem
from shared.rules.subjects import IPAddress, address_key, person_key

log = logging.getLogger(__name__)

_TAKE = "SELECT * FROM qunma_rate_take(p_keys => $1, p_interval => $2, p_burst => $3)"


@dataclass(frozen=True)
class Rate:
    """`per_second` on average, `burst` at once."""

    per_second: float
    burst: int

    @classmethod
    def per_minute(cls, count: int) -> Rate | None:
        return cls(count / 60, count) if count > 0 else None

    @classmethod
    def per_second_with_burst(cls, count: float, burst: int | None = None) -> Rate | None:
        if count <= 0:
            return None
        return cls(count, burst if burst else max(1, math.ceil(2 * count)))


@dataclass(frozen=True)
class Limits:
    per_key: Rate | None  # None: off
    per_tenant: Rate | None
    per_user: Rate | None
    per_address: Rate | None


@dataclass(frozen=True)
class Bucket:
    name: str  # what it limits: key, tenant, user, address
    key: str
    rate: Rate


@dataclass(frozen=True)
class Standing:
    """Where a caller stands after a request: the tightest of its buckets."""

    buckets: tuple[Bucket, ...]
    tightest: Bucket
    remaining: int
    reset: float

    def headers(self) -> dict[str, str]:
        policy = ", ".join(
            f'"{b.name}";q={b.rate.burst};w={max(1, math.ceil(b.rate.burst / b.rate.per_second))}'
            for b in self.buckets
        )
        return {
            "RateLimit-Policy": policy,
            "RateLimit": f'"{self.tightest.name}";r={self.remaining};t={math.ceil(self.reset)}',
        }


class RateLimiter:
    def __init__(self, pool: RequestPool, limits: Limits, users: UserIndex) -> None:
        self.pool = pool
        self.limits = limits
        self.users = users

    def caller(
        self, key_id: uuid.UUID | None, tenant_id: uuid.UUID | None, key_rate: Rate | None
    ) -> list[Bucket]:
        found = []
        rate = key_rate or self.limits.per_key
        if key_id is not None and rate is not None:
            found.append(Bucket("key", f"key:{key_id}", rate))
        if tenant_id is not None and self.limits.per_tenant is not None:
            found.append(Bucket("tenant", f"tenant:{tenant_id}", self.limits.per_tenant))
        return found

    def user(self, tenant_id: uuid.UUID | None, user_id: str) -> list[Bucket]:
        if self.limits.per_user is None:
            return []
        key = person_key(self.users, tenant_id, user_id)
        return [Bucket("user", key, self.limits.per_user)]

    def address(self, ip: IPAddress | None) -> list[Bucket]:
        if ip is None or self.limits.per_address is None:
            return []
        return [Bucket("address", f"ip:{address_key(ip)}", self.limits.per_address)]

    async def take(self, buckets: Sequence[Bucket]) -> Standing | None:
        """One request from every bucket, or `rate_limited` (and none taken)."""
        if not buckets:
            return None
        async with self.pool.own() as conn:  # never part of a request transaction
            rows = await conn.fetch(
                _TAKE,
                [b.key for b in buckets],
                [1.0 / b.rate.per_second for b in buckets],
                [b.rate.burst for b in buckets],
            )
        by_key = {r["key"]: r for r in rows}
        if not all(r["allowed"] for r in rows) or len(rows) < len(buckets):
            refusing = [b for b in buckets if not by_key[b.key]["allowed"]] or list(buckets)
            wait = max(math.ceil(by_key[b.key]["retry_after"]) for b in refusing)
            names = ", ".join(b.name for b in refusing)
            headers = {"Retry-After": str(max(1, wait))}
            headers.update(
                Standing(tuple(buckets), refusing[0], 0, by_key[refusing[0].key]["reset"]).headers()
            )
            raise Problem(
                "rate_limited",
                f"too many requests for this {names}; retry in {max(1, wait)} s",
                headers=headers,
                limited_by=[b.name for b in refusing],
            )
        tightest = min(buckets, key=lambda b: by_key[b.key]["remaining"])
        row = by_key[tightest.key]
        return Standing(tuple(buckets), tightest, row["remaining"], row["reset"])

    async def forget_idle(self, every: float = 300.0) -> None:
        """Runs for the service's lifetime: a bucket full again for an hour is dropped."""
        while True:
            try:
                async with self.pool.own() as conn:
                    await conn.execute(
                        "DELETE FROM rate_buckets WHERE tat < now() - interval '1 hour'"
                    )
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("pruning rate buckets failed: %s", exc)
            await asyncio.sleep(every)


RATE_LIMITER = web.AppKey("rate_limiter", RateLimiter)
