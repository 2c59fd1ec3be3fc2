"""The issuer's composition root: `create_app(settings)` wires every part by keyword."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
from aiohttp import web

from services.issuer import readmodel
from services.issuer.api import codes, groups, wellknown
from services.issuer.bus import Bus
from services.issuer.context import BUS, POOL, RELAY, SETTINGS
from services.issuer.handlers import Deps
from services.issuer.signing_keys import SigningKeys
from shared.clock import Clock, utcnow
from shared.config import Settings, require
from shared.crypto.kek import Kek
from shared.db import create_pool, migrate_database
from shared.http.auth import Principal, auth_middleware
from shared.http.background import background
from shared.http.health import health_routes
from shared.http.logapi import log_handler
from shared.http.problems import problem_middleware
from shared.store import migrate
from shared.store.log_setup import ensure_log
from shared.store.relay import Relay
from shared.store.unit_of_work import Outbox

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024


def migrations() -> list[migrate.Migration]:
    return migrate.store_migrations() + migrate.load("issuer", "services.issuer.migrations")


async def _lookup_key(pool: asyncpg.Pool, key_hash: str) -> Principal | None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT tenant_id, key_id, scopes FROM api_keys "
            "WHERE key_hash = $1 AND revoked_at IS NULL",
            key_hash,
        )
    return Principal(row["tenant_id"], row["key_id"], frozenset(row["scopes"])) if row else None


async def _database_ready(app: web.Application) -> dict[str, Any]:
    async with app[POOL].acquire() as conn:
        await conn.fetchval("SELECT 1")
    return {"ok": True}


async def _relay_status(app: web.Application) -> dict[str, Any]:
    stats = app[RELAY].stats
    # Any replica may lead; this one is ready whether or not it does.
    return {"ok": True, "leader": stats.leader, "published": stats.published}


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    dsn = require(settings.issuer_database_url, "QUNMA_ISSUER_DATABASE_URL")
    kek = Kek.from_text(require(settings.kek, "QUNMA_KEK"))
    require(settings.log_token, "QUNMA_LOG_TOKEN")
    app = web.Application(client_max_size=MAX_BODY, middlewares=[problem_middleware])
    app[SETTINGS] = settings
    relay = Relay(dsn, settings.issuer_log, settings.kafka)
    app[RELAY] = relay

    async def database(app: web.Application) -> AsyncIterator[None]:
        await migrate_database(dsn, migrations())
        pool = await create_pool(dsn)
        async with pool.acquire() as conn:
            await ensure_log(conn, settings.issuer_log)
        app[POOL] = pool
        outbox = Outbox(
            pool,
            settings.issuer_log,
            clock=clock,
            on_commit=relay.wake,
            projector=readmodel.project,
        )
        app[BUS] = Bus(Deps(outbox, SigningKeys(kek), settings.public_url))
        try:
            yield
        finally:
            await pool.close()

    app.cleanup_ctx.extend([database, background("issuer-relay", lambda app: relay.run())])

    async def lookup(key_hash: str) -> Principal | None:
        return await _lookup_key(app[POOL], key_hash)

    app.middlewares.append(auth_middleware(lookup, settings.log_token))
    app.add_routes(groups.routes() + codes.routes() + wellknown.routes())
    app.add_routes([web.get("/v1/log", log_handler(POOL, settings.issuer_log))])
    app.add_routes(health_routes({"database": _database_ready, "relay": _relay_status}))
    return app
