"""/v1/tenant (scope admin): the caller's tenant and its settings."""

from __future__ import annotations

import uuid

from aiohttp import web
from msgspec import UNSET

from services.issuer.api.registry import api
from services.issuer.api.schemas import TenantOut, TenantSettingsIn
from services.issuer.commands import ChangeTenantSettings
from services.issuer.context import BUS, POOL
from services.issuer.domain.fallback import domain_name
from shared.http.json import json_response
from shared.http.problems import Problem


async def _tenant(request: web.Request, tenant_id: uuid.UUID) -> TenantOut:
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM tenants WHERE tenant_id = $1", tenant_id)
    if row is None:
        raise Problem("not_found", f"no tenant {tenant_id}")
    domains = row["fallback_domains"]
    return TenantOut(row["tenant_id"], row["name"], row["created_at"], domains)


@api.route(
    "GET",
    "/v1/tenant",
    summary="The tenant",
    scope="admin",
    tags=["keys"],
    responses={200: TenantOut},
)
async def get_tenant(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    return json_response(await _tenant(request, tenant_id))


@api.route(
    "PATCH",
    "/v1/tenant",
    summary="Change the tenant's settings",
    scope="admin",
    tags=["keys"],
    body=TenantSettingsIn,
    responses={200: TenantOut},
)
async def change_tenant(
    request: web.Request, tenant_id: uuid.UUID, body: TenantSettingsIn
) -> web.Response:
    """`fallback_domains`: the hosts (with their subdomains) that fallback URLs of this
    tenant's codes and live codes may point to, from now on; `null` allows any. Recorded as
    `TenantSettingsChanged`."""
    if body.fallback_domains is not UNSET:
        domains = (
            None
            if body.fallback_domains is None
            else tuple(dict.fromkeys(domain_name(d) for d in body.fallback_domains))
        )
        await request.app[BUS].handle(ChangeTenantSettings(tenant_id, domains))
    return json_response(await _tenant(request, tenant_id))
