"""What handlers are given, and lookups several of them share."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass

from services.issuer.domain import code as codes
from services.issuer.domain import group as groups
from services.issuer.domain import livecode as livecodes
from services.issuer.domain import tenant as tenants
from services.issuer.domain.fallback import check_fallback_url
from services.issuer.signing_keys import SigningKeys
from shared.refusals import Reason, Refusal
from shared.store.eventstore import load_stream
from shared.store.unit_of_work import Outbox, UnitOfWork


@dataclass(frozen=True)
class Deps:
    outbox: Outbox
    signing_keys: SigningKeys
    public_url: str
    invite_secret: bytes  # keys the invite-code hashes in CodeIssued (shared/rules/invite_codes.py)
    # Called once an API key's revocation has committed: the kept key lookups are dropped.
    keys_revoked: Callable[[], None] = lambda: None


async def load_tenant(uow: UnitOfWork, tenant_id: uuid.UUID) -> tenants.Tenant:
    tenant = tenants.fold(await load_stream(uow.conn, tenants.stream(tenant_id)))
    if tenant is None:
        raise Refusal(Reason.NOT_FOUND, f"no tenant {tenant_id}")
    return tenant


async def load_group(uow: UnitOfWork, tenant_id: uuid.UUID, group_id: uuid.UUID) -> groups.Group:
    group = groups.fold(await load_stream(uow.conn, groups.stream(group_id)))
    if group is None or group.tenant_id != tenant_id:
        raise Refusal(Reason.NOT_FOUND, f"no group {group_id}")
    return group


async def load_code(uow: UnitOfWork, tenant_id: uuid.UUID, code_id: uuid.UUID) -> codes.Code:
    code = codes.fold(await load_stream(uow.conn, codes.stream(code_id)))
    if code is None or code.tenant_id != tenant_id:
        raise Refusal(Reason.NOT_FOUND, f"no code {code_id}")
    return code


async def load_live_code(
    uow: UnitOfWork, tenant_id: uuid.UUID | None, live_code_id: uuid.UUID
) -> livecodes.LiveCode:
    live = livecodes.fold(await load_stream(uow.conn, livecodes.stream(live_code_id)))
    if live is None or (tenant_id is not None and live.tenant_id != tenant_id):
        raise Refusal(Reason.NOT_FOUND, f"no live code {live_code_id}")
    return live


async def check_fallback(uow: UnitOfWork, tenant_id: uuid.UUID, url: str | None) -> None:
    """A fallback URL this tenant vouches for (services/issuer/domain/fallback.py)."""
    if url is None:
        return
    allowed = await uow.conn.fetchval(
        "SELECT fallback_domains FROM tenants WHERE tenant_id = $1", tenant_id
    )
    check_fallback_url(url, allowed)
