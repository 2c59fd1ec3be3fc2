"""Command handlers: load the aggregate, decide, record events and state in one transaction."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from services.issuer.commands import CreateGroup, CreateTenant, IssueCode, RevokeCode
from services.issuer.domain import code as codes
from services.issuer.domain import group as groups
from services.issuer.domain import tenant as tenants
from services.issuer.signing_keys import SigningKeys
from shared import codetoken
from shared.crypto.signing import ALGORITHM, SigningKey
from shared.events.issuer import (
    ApiKeyCreated,
    CodeIssued,
    GroupCreated,
    SigningKeyAdded,
    TenantCreated,
)
from shared.http.auth import hash_key, new_api_key
from shared.http.problems import Problem
from shared.ids import uuid7
from shared.store.eventstore import load_stream
from shared.store.unit_of_work import Outbox, UnitOfWork


@dataclass(frozen=True)
class Deps:
    outbox: Outbox
    signing_keys: SigningKeys
    public_url: str


@dataclass(frozen=True)
class CreatedTenant:
    tenant_id: uuid.UUID
    key_id: uuid.UUID
    api_key: str  # shown once, stored only as a hash


async def create_tenant(cmd: CreateTenant, deps: Deps) -> CreatedTenant:
    tenant_id, key_id, api_key = uuid7(), uuid7(), new_api_key()
    signing_key = SigningKey.generate()

    async def decide(uow: UnitOfWork) -> CreatedTenant:
        stream = tenants.stream(tenant_id)
        events = [
            TenantCreated(tenant_id=tenant_id, name=cmd.name),
            ApiKeyCreated(
                key_id=key_id,
                name=cmd.key_name,
                key_hash=hash_key(api_key),
                scopes=list(cmd.scopes),
            ),
            SigningKeyAdded(
                key_id=signing_key.key_id, algorithm=ALGORITHM, public_key=signing_key.public_b64
            ),
        ]
        for version, event in enumerate(events, start=1):
            uow.record(
                event, stream_id=stream, version=version, tenant_id=tenant_id, key=str(tenant_id)
            )
        return CreatedTenant(tenant_id, key_id, api_key)

    async with deps.outbox.unit() as uow:
        created = await decide(uow)
        # The secret row refers to the public row the projector writes: flush that first.
        await uow.flush()
        await deps.signing_keys.store(uow.conn, signing_key)
    return created


async def _group(uow: UnitOfWork, tenant_id: uuid.UUID, group_id: uuid.UUID) -> groups.Group:
    group = groups.fold(await load_stream(uow.conn, groups.stream(group_id)))
    if group is None or group.tenant_id != tenant_id:
        raise Problem("not_found", f"no group {group_id}")
    return group


async def _code(uow: UnitOfWork, tenant_id: uuid.UUID, code_id: uuid.UUID) -> codes.Code:
    code = codes.fold(await load_stream(uow.conn, codes.stream(code_id)))
    if code is None or code.tenant_id != tenant_id:
        raise Problem("not_found", f"no code {code_id}")
    return code


async def create_group(cmd: CreateGroup, deps: Deps) -> groups.Group:
    group_id = uuid7()

    async def decide(uow: UnitOfWork) -> groups.Group:
        event = GroupCreated(group_id=group_id, name=cmd.name, max_members=cmd.max_members)
        return groups.mutate(
            None,
            uow.record(
                event,
                stream_id=groups.stream(group_id),
                version=1,
                tenant_id=cmd.tenant_id,
                key=str(group_id),
            ),
        )

    return await deps.outbox.run(decide)


async def issue_code(cmd: IssueCode, deps: Deps) -> codes.Code:
    async def decide(uow: UnitOfWork) -> codes.Code:
        code_id = uuid7()
        group = await _group(uow, cmd.tenant_id, cmd.group_id)
        key = await deps.signing_keys.active(uow.conn, cmd.tenant_id)
        # Whole seconds: the token carries Unix seconds, and the event must say the same.
        issued_at = uow.now.replace(microsecond=0)
        expires_at = issued_at + timedelta(seconds=cmd.ttl_seconds)
        payload = codetoken.payload_url(deps.public_url, codetoken.issue(code_id, expires_at, key))
        event = CodeIssued(
            code_id=code_id,
            group_id=group.group_id,
            key_id=key.key_id,
            payload=payload,
            issued_at=issued_at,
            expires_at=expires_at,
            max_scans=cmd.max_scans,
        )
        return codes.mutate(
            None,
            uow.record(
                event,
                stream_id=codes.stream(code_id),
                version=1,
                tenant_id=cmd.tenant_id,
                key=str(group.group_id),
            ),
        )

    return await deps.outbox.run(decide)


async def revoke_code(cmd: RevokeCode, deps: Deps) -> codes.Code:
    async def decide(uow: UnitOfWork) -> codes.Code:
        code = await _code(uow, cmd.tenant_id, cmd.code_id)
        for event in codes.revoke(code, cmd.reason):
            code = codes.mutate(
                code,
                uow.record(
                    event,
                    stream_id=codes.stream(code.code_id),
                    version=code.version + 1,
                    tenant_id=cmd.tenant_id,
                    key=str(code.group_id),
                ),
            )
        return code

    return await deps.outbox.run(decide)


Handler = Callable[[Any, Deps], Awaitable[Any]]

HANDLERS: dict[type, Handler] = {
    CreateTenant: create_tenant,
    CreateGroup: create_group,
    IssueCode: issue_code,
    RevokeCode: revoke_code,
}
