"""The issuer's composition root: `create_app(settings)` wires every part by keyword."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from services.issuer import readmodel
from services.issuer.api import (  # noqa: F401
    codes,
    groups,
    images,
    keys,
    live_codes,
    tenant,
    wellknown,
)
from services.issuer.api.registry import api
from services.issuer.bus import Bus
from services.issuer.context import BUS, CLOCK, FOLLOWER, POOL, RELAY, SETTINGS
from services.issuer.counters import RedeemerCounters
from services.issuer.handlers import Deps
from services.issuer.reactions import AutoCreateGroups
from services.issuer.schema import functions, migrations
from services.issuer.signing_keys import SigningKeys
from shared.clock import Clock, utcnow
from shared.config import Settings, require
from shared.crypto.kek import Kek
from shared.crypto.user_index import UserIndex
from shared.db import create_pool, migrate_database
from shared.http.auth import CachedKeys, Principal, auth_middleware
from shared.http.background import background
from shared.http.endpoints import openapi_route
from shared.http.health import register_health, relay_ready
from shared.http.idempotency import IDEMPOTENCY, Idempotency, forget_old_keys
from shared.http.logapi import register_log
from shared.http.problems import problem_middleware
from shared.http.proofapi import register_proofs
from shared.http.ratelimit import RATE_LIMITER, RateLimiter
from shared.store.follower import Follower
from shared.store.log_client import LogClient
from shared.store.log_setup import ensure_log
from shared.store.projection import Fanout
from shared.store.relay import Checkpoints, Relay
from shared.store.unit_of_work import Outbox

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024


async def _database_ready(app: web.Application) -> dict[str, Any]:
    async with app[POOL].acquire() as conn:
        await conn.fetchval("SELECT 1")
    return {"ok": True}


async def _counters_status(app: web.Application) -> dict[str, Any]:
    # Counters lag behind the redeemer at worst; the issuer serves regardless.
    follower = app[FOLLOWER]
    return {
        "ok": True,
        "caught_up": follower.caught_up,
        "applied": follower.stats.applied,
        "rejected": sum(s.rejected for s in follower.stats.partitions.values()),
        "broken": [p for p, s in follower.stats.partitions.items() if s.broken],
    }


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    dsn = require(settings.issuer_database_url, "QUNMA_ISSUER_DATABASE_URL")
    kek = Kek.from_text(require(settings.kek, "QUNMA_KEK"))
    log_token = require(settings.log_token, "QUNMA_LOG_TOKEN")
    users = UserIndex.from_kek(kek)
    app = web.Application(client_max_size=MAX_BODY, middlewares=[problem_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock
    relay = Relay(
        dsn,
        settings.issuer_log,
        settings.kafka,
        checkpoints=Checkpoints(settings.checkpoint_policy, kek, "issuer"),
    )
    app[RELAY] = relay

    async def lookup(key_hash: str) -> Principal | None:
        async with app[POOL].acquire() as conn:
            row = await conn.fetchrow(
                "SELECT tenant_id, key_id, scopes, rate_per_second, rate_burst FROM api_keys "
                "WHERE key_hash = $1 AND revoked_at IS NULL",
                key_hash,
            )
        return Principal.of_key(row) if row else None

    # Kept for a second (shared/http/auth.py); dropped at once when a key is revoked here.
    api_keys = CachedKeys(lookup)

    async def database(app: web.Application) -> AsyncIterator[None]:
        await migrate_database(dsn, migrations(), functions())
        pool = await create_pool(dsn)
        async with pool.acquire() as conn:
            await ensure_log(conn, settings.issuer_log)
        app[POOL] = pool
        app[IDEMPOTENCY] = Idempotency(pool, users)
        app[RATE_LIMITER] = RateLimiter(pool, settings.rate_limits, users)
        outbox = Outbox(
            pool,
            settings.issuer_log,
            clock=clock,
            on_commit=relay.wake,
            projector=readmodel.project,
        )
        app[BUS] = Bus(
            Deps(
                outbox,
                SigningKeys(kek),
                settings.public_url,
                settings.invite_secret,
                keys_revoked=api_keys.forget,
            )
        )
        async with aiohttp.ClientSession() as session:
            app[FOLLOWER] = Follower(
                pool,
                settings.redeemer_log,
                settings.kafka,
                Fanout(
                    [
                        RedeemerCounters(),
                        AutoCreateGroups(settings.issuer_log, clock, readmodel.project, relay.wake),
                    ]
                ),
                LogClient(settings.redeemer_url, log_token, session),
                name="issuer",
            )
            try:
                yield
            finally:
                await pool.close()

    app.cleanup_ctx.extend(
        [
            database,
            background("issuer-relay", lambda app: relay.run()),
            background("issuer-follower", lambda app: app[FOLLOWER].run()),
            background("issuer-idempotency", lambda app: forget_old_keys(app[POOL])),
            background("issuer-rates", lambda app: app[RATE_LIMITER].forget_idle()),
        ]
    )

    app.middlewares.append(auth_middleware(api_keys, log_token))
    endpoints = api.copy()
    register_log(endpoints, POOL, settings.issuer_log)
    register_proofs(endpoints, POOL, settings.issuer_log, settings.checkpoint_seconds)
    register_health(
        endpoints,
        {"database": _database_ready, "relay": relay_ready(RELAY), "counters": _counters_status},
    )
    app.add_routes([*endpoints.routes(), openapi_route(endpoints)])
    return app
