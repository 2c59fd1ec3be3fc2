"""The redeemer's composition root: `create_app(settings)` wires every part by keyword."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
from aiohttp import web

from services.redeemer.api import landing, members, people, scans, stats  # noqa: F401
from services.redeemer.api.registry import api
from services.redeemer.application.joins import Joiner
from services.redeemer.application.live import LiveScans
from services.redeemer.application.lockout import Lockout
from services.redeemer.application.outcomes import Outcomes
from services.redeemer.application.people import People
from services.redeemer.application.propagation import Projected
from services.redeemer.application.requests import JoinRequests
from services.redeemer.application.scanner import Scanner
from services.redeemer.application.signatures import CodeSignatures
from services.redeemer.application.tokens import Tokens
from services.redeemer.background.retention import Retention, RetentionPolicy
from services.redeemer.background.sweeper import Sweeper
from services.redeemer.context import (
    ADMISSION,
    CLOCK,
    COOKIES,
    FOLLOWER,
    JOINER,
    OUTBOX,
    PEOPLE,
    POOL,
    PROJECTED,
    RELAY,
    REQUESTS,
    RETENTION,
    SCANNER,
    SETTINGS,
    SWEEPER,
    TRUSTED,
    USERS,
)
from services.redeemer.projections.issuer import IssuerProjection
from services.redeemer.schema import functions, migrations
from services.redeemer.web.visitors import Cookies
from shared.clock import Clock, utcnow
from shared.config import Settings, require
from shared.crypto.kek import Kek
from shared.crypto.user_index import UserIndex
from shared.db import create_pool, migrate_database
from shared.http.admission import FairGate, admission_middleware
from shared.http.auth import CachedKeys, Principal, auth_middleware
from shared.http.background import background
from shared.http.clientip import parse_networks
from shared.http.endpoints import openapi_route
from shared.http.health import register_health, relay_ready
from shared.http.idempotency import IDEMPOTENCY, Idempotency, forget_old_keys
from shared.http.jwks import register_log_jwks
from shared.http.logapi import register_log
from shared.http.problems import problem_middleware
from shared.http.proofapi import register_proofs
from shared.http.ratelimit import RATE_LIMITER, RateLimiter
from shared.store.follower import Follower
from shared.store.log_client import LogClient
from shared.store.log_setup import ensure_log
from shared.store.relay import Checkpoints, Relay
from shared.store.unit_of_work import Outbox

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
POOL_SIZE = 30  # also how many scans and joins are decided at once (shared/http/admission.py)


async def _database_ready(app: web.Application) -> dict[str, Any]:
    async with app[POOL].acquire() as conn:
        await conn.fetchval("SELECT 1")
    return {"ok": True}


async def _admission_status(app: web.Application) -> dict[str, Any]:
    gate = app[ADMISSION].stats
    keys = app[SCANNER].signatures
    return {
        "ok": True,
        "in_use": gate.in_use,
        "waiting": gate.waiting,
        "tenants_waiting": gate.classes_waiting,
        "unknown_key_lookups": keys.lookups,
        "unknown_keys_from_memory": keys.unknown_answered_from_memory,
    }


async def _projection_ready(app: web.Application) -> dict[str, Any]:
    follower = app[FOLLOWER]
    return {
        "ok": follower.caught_up,
        "partitions": {
            str(p): {
                "position": s.position,
                "caught_up": s.caught_up,
                "broken": s.broken,
                "gaps_filled": s.gaps_filled,
                "rejected": s.rejected,  # records on the topic that were not the issuer's
            }
            for p, s in follower.stats.partitions.items()
        },
    }


def create_app(settings: Settings, *, clock: Clock = utcnow) -> web.Application:
    dsn = require(settings.redeemer_database_url, "QUNMA_REDEEMER_DATABASE_URL")
    log_token = require(settings.log_token, "QUNMA_LOG_TOKEN")
    # The redeemer signs its own log's checkpoints with a key sealed under the KEK.
    kek = Kek.from_text(require(settings.kek, "QUNMA_KEK"))
    users = UserIndex.from_kek(kek)
    # Without its own secret, the cookie key is derived from the log token (never equal to it).
    cookie_secret = (settings.cookie_secret or "").encode() or hashlib.sha256(
        b"qunma-landing-cookie:" + log_token.encode()
    ).digest()
    app = web.Application(client_max_size=MAX_BODY, middlewares=[problem_middleware])
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[TRUSTED] = parse_networks(settings.trusted_proxies)
    app[COOKIES] = Cookies(cookie_secret)
    app[ADMISSION] = FairGate(POOL_SIZE)
    app[USERS] = users
    # A scan commits an event each: seal them in batches of up to 20 ms (the issuer learns
    # counters a little later; nothing waits on this log as scans wait on the issuer's).
    relay = Relay(
        dsn,
        settings.redeemer_log,
        settings.kafka,
        linger=0.02,
        checkpoints=Checkpoints(settings.checkpoint_policy, kek, "redeemer"),
    )
    app[RELAY] = relay

    async def database(app: web.Application) -> AsyncIterator[None]:
        await migrate_database(dsn, migrations(), functions())
        # Scans arrive in bursts: keep connections ready rather than open them under load.
        pool = await create_pool(dsn, min_size=10, max_size=POOL_SIZE)
        async with pool.acquire() as conn:
            await ensure_log(conn, settings.redeemer_log)
        app[POOL] = pool
        app[IDEMPOTENCY] = Idempotency(pool, users)
        async with aiohttp.ClientSession() as session:
            follower = Follower(
                pool,
                settings.issuer_log,
                settings.kafka,
                IssuerProjection(),
                LogClient(settings.issuer_url, log_token, session),
                name="redeemer",
            )
            app[FOLLOWER] = follower
            outbox = Outbox(pool, settings.redeemer_log, clock=clock, on_commit=relay.wake)
            persons = People(kek, clock)
            projected = Projected(pool)
            outcomes = Outcomes(outbox, persons)
            tokens = Tokens(outbox, token_ttl=settings.join_token_ttl, clock=clock)
            requests = JoinRequests(outbox, persons, clock)
            app[OUTBOX], app[PEOPLE], app[PROJECTED], app[REQUESTS] = (
                outbox,
                persons,
                projected,
                requests,
            )
            app[SCANNER] = Scanner(
                signatures=CodeSignatures(pool, follower),
                projected=projected,
                people=persons,
                outcomes=outcomes,
                tokens=tokens,
                requests=requests,
                live=LiveScans(
                    projected=projected, people=persons, outcomes=outcomes, tokens=tokens
                ),
                lockout=Lockout(users),
                invite_secret=settings.invite_secret,
                clock=clock,
            )
            app[JOINER] = Joiner(outbox, persons)
            app[RETENTION] = Retention(
                outbox,
                RetentionPolicy(settings.retention_personal_days, settings.retention_days),
                clock=clock,
            )
            app[SWEEPER] = Sweeper(outbox)
            app[RATE_LIMITER] = RateLimiter(pool, settings.rate_limits, users)
            try:
                yield
            finally:
                await tokens.combiner.close()  # batches in the database end before the pool
                await pool.close()

    app.cleanup_ctx.extend(
        [
            database,
            background("redeemer-follower", lambda app: app[FOLLOWER].run()),
            background("redeemer-relay", lambda app: relay.run()),
            background("redeemer-sweeper", lambda app: app[SWEEPER].run()),
            background("redeemer-retention", lambda app: app[RETENTION].run()),
            background("redeemer-rates", lambda app: app[RATE_LIMITER].forget_idle()),
            background("redeemer-idempotency", lambda app: forget_old_keys(app[POOL])),
        ]
    )

    async def lookup(key_hash: str) -> Principal | None:
        async with app[POOL].acquire() as conn:
            row = await conn.fetchrow(
                "SELECT tenant_id, key_id, scopes, rate_per_second, rate_burst FROM api_keys "
                "WHERE key_hash = $1 AND NOT revoked",
                key_hash,
            )
        return Principal.of_key(row) if row else None

    # The scan path authenticates every request: keys are kept for a second (docs/api.md).
    app.middlewares.extend(
        [
            auth_middleware(CachedKeys(lookup), log_token),
            admission_middleware(app[ADMISSION], ("/v1/scans", "/v1/joins", "/j/")),
        ]
    )
    endpoints = api.copy()
    register_log(endpoints, POOL, settings.redeemer_log)
    register_proofs(endpoints, POOL, settings.redeemer_log, settings.checkpoint_seconds)
    register_log_jwks(endpoints, POOL, settings.redeemer_topic)
    register_health(
        endpoints,
        {
            "database": _database_ready,
            "projection": _projection_ready,
            "relay": relay_ready(RELAY),
            "admission": _admission_status,
        },
    )
    app.add_routes([*endpoints.routes(), openapi_route(endpoints)])
    return app
