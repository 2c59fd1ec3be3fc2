"""A real HTTP server on loopback serving a store's GET /v1/log and the log key that signs
its batches (/.well-known/jwks.json), as a producing service does."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from aiohttp import web

from shared.crypto.signing import SigningKey
from shared.http.auth import Principal, auth_middleware
from shared.http.endpoints import Api
from shared.http.json import json_response
from shared.http.jwks import Jwks, ed25519_jwk
from shared.http.logapi import register_log
from shared.http.problems import problem_middleware
from shared.store.eventstore import LogSpec

POOL = web.AppKey("pool", asyncpg.Pool)
TOKEN = "qlt_test-log-token"
# The producer's log key in these tests: it signs the batches `publish` sends.
LOG_KEY = SigningKey.generate()


@asynccontextmanager
async def log_server(dsn: str, log: LogSpec) -> AsyncIterator[str]:
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None

    async def nobody(key_hash: str) -> Principal | None:
        return None

    app = web.Application(middlewares=[problem_middleware, auth_middleware(nobody, TOKEN)])
    app[POOL] = pool
    api = Api("log", "1", "a producer's log API")
    register_log(api, POOL, log)  # type: ignore[arg-type]

    async def jwks(request: web.Request) -> web.Response:
        return json_response(Jwks([ed25519_jwk(LOG_KEY.key_id, LOG_KEY.public_b64, log.name)]))

    app.add_routes([*api.routes(), web.get("/.well-known/jwks.json", jwks)])
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
