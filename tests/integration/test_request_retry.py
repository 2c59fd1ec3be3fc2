"""A request whose transaction PostgreSQL rolls back to break a deadlock is run again, on a
real HTTP server against the real database, and never answered 500."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web

from shared.http.problems import ROLLED_BACK_ATTEMPTS, Handler, problem_middleware
from shared.runtime.children import free_port
from tests.support.infra import Infra


@asynccontextmanager
async def _serve(handler: Handler) -> AsyncIterator[str]:
    app = web.Application(middlewares=[problem_middleware])
    app.router.add_post("/move", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}/move"
    finally:
        await runner.cleanup()


async def _deadlock(
    pool: asyncpg.Pool, other: asyncpg.Connection, victims: int
) -> tuple[int, Any, int]:
    """A handler updating rows 1 then 2 while another transaction updates 2 then 1, the
    handler (with the shorter deadlock_timeout) the one rolled back, `victims` times."""
    calls = 0

    async def move(request: web.Request) -> web.Response:
        nonlocal calls
        calls += 1
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL deadlock_timeout = '20ms'")
            await conn.execute("UPDATE pair SET v = v + 1 WHERE id = 1")
            if calls <= victims:
                held = other.transaction()
                await held.start()
                await other.execute("SET LOCAL deadlock_timeout = '10s'")
                await other.execute("UPDATE pair SET v = v + 10 WHERE id = 2")
                waiting = asyncio.create_task(
                    other.execute("UPDATE pair SET v = v + 10 WHERE id = 1")
                )
                await asyncio.sleep(0.1)  # `other` now waits for row 1
                try:
                    await conn.execute("UPDATE pair SET v = v + 1 WHERE id = 2")
                finally:
                    await waiting  # row 1 is free once the deadlock aborted this transaction
                    await held.commit()
            await conn.execute("UPDATE pair SET v = v + 1 WHERE id = 2")
        return web.json_response({"calls": calls})

    async with (
        _serve(move) as url,
        aiohttp.ClientSession() as session,
        session.post(url) as response,
    ):
        body = await response.json(content_type=None)
        return response.status, body, calls


async def test_a_request_rolled_back_by_a_deadlock_is_run_again(infra: Infra) -> None:
    async with infra.database() as dsn:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        other = await asyncpg.connect(dsn)
        try:
            await other.execute(
                "CREATE TABLE pair (id int PRIMARY KEY, v int NOT NULL);"
                "INSERT INTO pair VALUES (1, 0), (2, 0)"
            )
            status, body, calls = await _deadlock(pool, other, victims=1)
            assert (status, body, calls) == (200, {"calls": 2}, 2)
            rows = [tuple(r) for r in await other.fetch("SELECT id, v FROM pair ORDER BY id")]
            assert rows == [(1, 11), (2, 11)]  # the rolled-back attempt left nothing

            # Rolled back every time: a 503 to retry later, still not a 500.
            status, body, calls = await _deadlock(pool, other, victims=ROLLED_BACK_ATTEMPTS)
            assert (status, body["code"], calls) == (503, "busy", ROLLED_BACK_ATTEMPTS)
            rows = [tuple(r) for r in await other.fetch("SELECT id, v FROM pair ORDER BY id")]
            assert rows == [
                (1, 11 + 10 * ROLLED_BACK_ATTEMPTS),
                (2, 11 + 10 * ROLLED_BACK_ATTEMPTS),
            ]
        finally:
            await other.close()
            await pool.close()
