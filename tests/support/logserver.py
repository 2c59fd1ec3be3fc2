"""A real HTTP server on loopback serving a store's GET /v1/log, as a producing service does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiohttp import web

from shared.http.auth import Principal, auth_middleware
from shared.http.endpoints import Api
from shared.http.logapi import register_log
from shared.http.problems import problem_middleware
from shared.store.eventstore import LogSpec

POOL = web.AppKey("pool", asyncpg.Pool)
TOKEN = "qlt_test-log-token"


@asynccontextmanager
async def log_server(dsn: str, log: LogSpec) -> AsyncIterator[str]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None

    async def nobody(key_hash: str) -> Principal | None:
        return None

    app = web.Application(middlewares=[problem_middleware, auth_middleware(nobody, TOKEN)])
    app[POOL] = pool
    api = Api("log", "1", "a producer's log API")
    register_log(api, POOL, log)
    app.add_routes(api.routes())
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        await pool.close()
