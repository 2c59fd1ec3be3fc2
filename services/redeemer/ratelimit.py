"""Per-IP and per-user rate limits shared by every replica: one-minute windows in PostgreSQL.

One statement a request: an upsert of both counters into an UNLOGGED table (no WAL), which
returns the new counts. Over the limit is a 429 with `Retry-After` to the next window.
"""

from __future__ import annotations

import asyncio
import logging
import math
import uuid
from dataclasses import dataclass

import asyncpg

from shared.clock import Clock, utcnow
from shared.http.clientip import IPAddress
from shared.http.problems import Problem

log = logging.getLogger(__name__)

_HIT = """
INSERT INTO rate_counters (key, window_start, hits)
SELECT k, $2, 1 FROM unnest($1::text[]) AS k
ON CONFLICT (key, window_start) DO UPDATE SET hits = rate_counters.hits + 1
RETURNING key, hits
"""


@dataclass(frozen=True)
class Limits:
    per_ip: int  # requests a minute; 0 turns the limit off
    per_user: int


class RateLimiter:
    def __init__(self, pool: asyncpg.Pool, limits: Limits, clock: Clock = utcnow) -> None:
        self.pool = pool
        self.limits = limits
        self.clock = clock

    async def hit(
        self, scope: str, ip: IPAddress | None, tenant_id: uuid.UUID | None, user_id: str | None
    ) -> None:
        wanted: dict[str, int] = {}
        if self.limits.per_ip and ip is not None:
            wanted[f"{scope}:ip:{ip}"] = self.limits.per_ip
        if self.limits.per_user and user_id:
            wanted[f"{scope}:user:{tenant_id}:{user_id}"] = self.limits.per_user
        if not wanted:
            return
        now = self.clock()
        window = now.replace(second=0, microsecond=0)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_HIT, list(wanted), window)
        if any(r["hits"] > wanted[r["key"]] for r in rows):
            wait = max(1, math.ceil(60 - (now - window).total_seconds()))
            raise Problem(
                "rate_limited", "too many requests; slow down", headers={"Retry-After": str(wait)}
            )

    async def forget_old_windows(self, every: float = 60.0) -> None:
        while True:
            try:
                async with self.pool.acquire() as conn:
                    await conn.execute(
                        "DELETE FROM rate_counters "
                        "WHERE window_start < now() - interval '2 minutes'"
                    )
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("pruning rate counters failed: %s", exc)
            await asyncio.sleep(every)
