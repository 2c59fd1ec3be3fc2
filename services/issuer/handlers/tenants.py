"""Tenants, their API keys and their signing keys: all in the tenant's stream."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.issuer.commands import (
    ChangeTenantSettings,
    CreateApiKey,
    CreateTenant,
    RevokeApiKey,
    RotateSigningKey,
)
from services.issuer.domain import tenant as tenants
from services.issuer.handlers.deps import Deps, load_tenant
from shared.crypto.api_keys import hash_key, new_api_key
from shared.crypto.signing import ALGORITHM, SigningKey
from shared.db import after_commit
from shared.events import Event
from shared.events.issuer import (
    ApiKeyCreated,
    ApiKeyRevoked,
    SigningKeyAdded,
    SigningKeyRetired,
    TenantCreated,
    TenantSettingsChanged,
)
from shared.ids import uuid7
from shared.refusals import Reason, Refusal
from shared.store.unit_of_work import UnitOfWork


@dataclass(frozen=True)
class CreatedKey:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    api_key: str  # shown once, stored only as a hash


def _record(uow: UnitOfWork, tenant: tenants.Tenant, *events: Event) -> tenants.Tenant:
    for event in events:
        tenant = tenants.mutate(
            tenant,
            uow.record(
                event,
                stream_id=tenants.stream(tenant.tenant_id),
                version=tenant.version + 1,
                tenant_id=tenant.tenant_id,
                key=str(tenant.tenant_id),
            ),
        )
    return tenant


async def create_tenant(cmd: CreateTenant, deps: Deps) -> CreatedKey:
    tenant_id, key_id, api_key = uuid7(), uuid7(), new_api_key()
    signing_key = SigningKey.generate()
    async with deps.outbox.unit() as uow:
        tenant = tenants.mutate(
            None,
            uow.record(
                TenantCreated(tenant_id=tenant_id, name=cmd.name),
                stream_id=tenants.stream(tenant_id),
                version=1,
                tenant_id=tenant_id,
                key=str(tenant_id),
            ),
        )
        _record(
            uow,
            tenant,
            ApiKeyCreated(
                key_id=key_id,
                name=cmd.key_name,
                key_hash=hash_key(api_key),
                scopes=list(cmd.scopes),
            ),
            SigningKeyAdded(
                key_id=signing_key.key_id, algorithm=ALGORITHM, public_key=signing_key.public_b64
            ),
        )
        # The secret row refers to the public row the projector writes: flush that first.
        await uow.flush()
        await deps.signing_keys.store(uow.conn, signing_key)
    return CreatedKey(tenant_id, key_id, api_key)


async def create_api_key(cmd: CreateApiKey, deps: Deps) -> CreatedKey:
    key_id, api_key = uuid7(), new_api_key()

    async def decide(uow: UnitOfWork) -> CreatedKey:
        tenant = await load_tenant(uow, cmd.tenant_id)
        _record(
            uow,
            tenant,
            ApiKeyCreated(
                key_id=key_id,
                name=cmd.name,
                key_hash=hash_key(api_key),
                scopes=list(cmd.scopes),
                rate_limit=cmd.rate_limit,
            ),
        )
        return CreatedKey(cmd.tenant_id, key_id, api_key)

    return await deps.outbox.run(decide)


async def revoke_api_key(cmd: RevokeApiKey, deps: Deps) -> None:
    async def decide(uow: UnitOfWork) -> None:
        tenant = await load_tenant(uow, cmd.tenant_id)
        if cmd.key_id not in tenant.api_keys:
            exists = await uow.conn.fetchval(
                "SELECT 1 FROM api_keys WHERE key_id = $1 AND tenant_id = $2",
                cmd.key_id,
                cmd.tenant_id,
            )
            if not exists:
                raise Refusal(Reason.NOT_FOUND, f"no API key {cmd.key_id}")
            return  # already revoked
        _record(uow, tenant, ApiKeyRevoked(key_id=cmd.key_id))

    await deps.outbox.run(decide)
    # Inside a request transaction, when that commits: this replica refuses the key at once.
    after_commit(deps.keys_revoked)


async def rotate_signing_key(cmd: RotateSigningKey, deps: Deps) -> str:
    """New codes are signed with a new key at once; the old one is retired, and stays in
    the JWKS while any code it signed can still be scanned."""
    key = SigningKey.generate()

    async def decide(uow: UnitOfWork) -> str:
        tenant = await load_tenant(uow, cmd.tenant_id)
        retire = [SigningKeyRetired(key_id=tenant.active_key)] if tenant.active_key else []
        _record(
            uow,
            tenant,
            *retire,
            SigningKeyAdded(key_id=key.key_id, algorithm=ALGORITHM, public_key=key.public_b64),
        )
        await uow.flush()
        await deps.signing_keys.store(uow.conn, key)
        return key.key_id

    return await deps.outbox.run(decide)


async def change_tenant_settings(cmd: ChangeTenantSettings, deps: Deps) -> tenants.Tenant:
    async def decide(uow: UnitOfWork) -> tenants.Tenant:
        tenant = await load_tenant(uow, cmd.tenant_id)
        if tenant.fallback_domains == cmd.fallback_domains:
            return tenant
        domains = None if cmd.fallback_domains is None else list(cmd.fallback_domains)
        return _record(uow, tenant, TenantSettingsChanged(fallback_domains=domains))

    return await deps.outbox.run(decide)
