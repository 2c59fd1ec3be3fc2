"""Creating a tenant outside the HTTP API (`qunma tenant create`, and `qunma up`'s demo tenant)."""

from __future__ import annotations

from services.issuer import readmodel
from services.issuer.commands import CreateTenant
from services.issuer.handlers import CreatedKey, Deps
from services.issuer.handlers.tenants import create_tenant
from services.issuer.schema import functions, migrations
from services.issuer.signing_keys import SigningKeys
from shared.config import Settings, require
from shared.crypto.kek import Kek
from shared.db import create_pool, migrate_database
from shared.store.actor import acting_as
from shared.store.log_setup import ensure_log
from shared.store.unit_of_work import Outbox


async def provision_tenant(settings: Settings, name: str) -> CreatedKey:
    dsn = require(settings.issuer_database_url, "QUNMA_ISSUER_DATABASE_URL")
    kek = Kek.from_text(require(settings.kek, "QUNMA_KEK"))
    await migrate_database(dsn, migrations(), functions())
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await ensure_log(conn, settings.issuer_log)
        # No relay here: the running issuer's relay seals and publishes these events.
        outbox = Outbox(pool, settings.issuer_log, projector=readmodel.project)
        with acting_as("cli:tenant-create"):
            return await create_tenant(
                CreateTenant(name),
                Deps(outbox, SigningKeys(kek), settings.public_url, settings.invite_secret),
            )
    finally:
        await pool.close()


async def key_is_valid(settings: Settings, key_hash: str) -> bool:
    dsn = require(settings.issuer_database_url, "QUNMA_ISSUER_DATABASE_URL")
    pool = await create_pool(dsn, min_size=1, max_size=1)
    try:
        async with pool.acquire() as conn:
            return bool(
                await conn.fetchval(
                    "SELECT 1 FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL", key_hash
                )
            )
    finally:
        await pool.close()
