"""Rows on their way from the issuer. A code's signature proves the issuer made it; one
issued a moment ago may still be on its way through the log, so it is waited for (up to
`wait` seconds, looking again with backoff), not refused."""

from __future__ import annotations

import asyncio

import asyncpg

from shared.refusals import Reason, Refusal


class Projected:
    def __init__(self, pool: asyncpg.Pool, wait: float = 3.0) -> None:
        self.pool = pool
        self.wait = wait

    async def row(self, query: str, *args: object, wait: bool = True) -> asyncpg.Record | None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + (self.wait if wait else 0.0)
        delay = 0.01
        while True:
            async with self.pool.acquire() as conn:
                row: asyncpg.Record | None = await conn.fetchrow(query, *args)
            if row is not None or loop.time() >= deadline:
                return row
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)


def not_propagated(what: str = "code") -> Refusal:
    return Refusal(
        Reason.CODE_NOT_PROPAGATED,
        f"this {what} was issued moments ago and is not known here yet; retry in a second",
        retry_after=1,
    )
