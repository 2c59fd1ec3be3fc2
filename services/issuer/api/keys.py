"""/v1/api-keys and /v1/signing-keys (scope admin)"""

from __future__ import annotations

import uuid

import asyncpg
from aiohttp import web
from msgspec import UNSET

from services.issuer.api.registry import api
from services.issuer.api.schemas import (
    ApiKeyList,
    ApiKeyOut,
    CreateApiKeyIn,
    RateLimitOut,
    SigningKeyList,
    SigningKeyOut,
)
from services.issuer.commands import CreateApiKey, RevokeApiKey, RotateSigningKey
from services.issuer.context import BUS, CLOCK, POOL
from services.issuer.handlers import CreatedKey
from shared.events.issuer import KeyRate
from shared.http.json import json_response
from shared.http.paths import path_uuid

# Shared with /.well-known/jwks.json. A key is "needed" while it is active, or while a code
# it signed can still be scanned.
KEYS_SQL = """
SELECT k.*,
       k.active OR EXISTS (
           SELECT 1 FROM codes c WHERE c.key_id = k.key_id AND c.revoked_at IS NULL
              AND c.superseded_at IS NULL AND (c.expires_at IS NULL OR c.expires_at > $1))
       OR EXISTS (SELECT 1 FROM live_codes l WHERE l.key_id = k.key_id AND l.revoked_at IS NULL)
       AS needed
FROM signing_keys k
"""


def _rate(row: asyncpg.Record) -> RateLimitOut | None:
    if row["rate_per_second"] is None:
        return None
    return RateLimitOut(int(row["rate_per_second"]), row["rate_burst"])


def signing_key_out(row: asyncpg.Record | None) -> SigningKeyOut:
    assert row is not None
    return SigningKeyOut(
        key_id=row["key_id"],
        algorithm=row["algorithm"],
        public_key=row["public_key"],
        status="active" if row["active"] else "retired",
        created_at=row["created_at"],
        retired_at=row["retired_at"],
        needed=row["needed"],
    )


@api.route(
    "POST",
    "/v1/api-keys",
    summary="Create an API key",
    scope="admin",
    tags=["keys"],
    body=CreateApiKeyIn,
    responses={201: ApiKeyOut},
)
async def create_api_key(
    request: web.Request, tenant_id: uuid.UUID, body: CreateApiKeyIn
) -> web.Response:
    """The key is in this response only; qunma keeps its SHA-256. `rate_limit` gives the key
    its own limit on both services (requests a second, and a burst); without it the
    deployment's per-key limit applies."""
    rate = None
    if body.rate_limit is not UNSET:
        per_second = body.rate_limit.per_second
        burst = body.rate_limit.burst
        rate = KeyRate(per_second, burst if burst is not UNSET else max(1, 2 * per_second))
    created: CreatedKey = await request.app[BUS].handle(
        CreateApiKey(tenant_id, body.name, tuple(dict.fromkeys(body.scopes)), rate)
    )
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow("SELECT * FROM api_keys WHERE key_id = $1", created.key_id)
    assert row is not None
    return json_response(
        ApiKeyOut(
            key_id=row["key_id"],
            name=row["name"],
            scopes=list(row["scopes"]),
            created_at=row["created_at"],
            api_key=created.api_key,
            rate_limit=_rate(row),
        ),
        status=201,
        headers={"Location": f"/v1/api-keys/{created.key_id}"},
    )


@api.route(
    "GET",
    "/v1/api-keys",
    summary="List API keys",
    scope="admin",
    tags=["keys"],
    responses={200: ApiKeyList},
)
async def list_api_keys(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM api_keys WHERE tenant_id = $1 ORDER BY created_at", tenant_id
        )
    return json_response(
        ApiKeyList(
            [
                ApiKeyOut(
                    key_id=r["key_id"],
                    name=r["name"],
                    scopes=list(r["scopes"]),
                    created_at=r["created_at"],
                    revoked_at=r["revoked_at"],
                    rate_limit=_rate(r),
                )
                for r in rows
            ]
        )
    )


@api.route(
    "DELETE",
    "/v1/api-keys/{key_id}",
    summary="Revoke an API key",
    scope="admin",
    tags=["keys"],
    responses={204: None},
    errors=["not_found"],
)
async def revoke_api_key(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    """Both services refuse the key as soon as they know (the redeemer learns it from the log)."""
    key_id = path_uuid(request, "key_id", "API key")
    await request.app[BUS].handle(RevokeApiKey(tenant_id, key_id))
    return web.Response(status=204)


@api.route(
    "POST",
    "/v1/signing-keys/rotate",
    summary="Rotate the signing key",
    scope="admin",
    tags=["keys"],
    responses={201: SigningKeyOut},
)
async def rotate_signing_key(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    """New codes are signed with a new Ed25519 key at once. Codes signed with the old key stay
    valid until they end; /.well-known/jwks.json lists every key still needed."""
    key_id = await request.app[BUS].handle(RotateSigningKey(tenant_id))
    async with request.app[POOL].acquire() as conn:
        row = await conn.fetchrow(KEYS_SQL + " WHERE k.key_id = $2", request.app[CLOCK](), key_id)
    return json_response(signing_key_out(row), status=201)


@api.route(
    "GET",
    "/v1/signing-keys",
    summary="List signing keys",
    scope="admin",
    tags=["keys"],
    responses={200: SigningKeyList},
)
async def list_signing_keys(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            KEYS_SQL + " WHERE k.tenant_id = $2 ORDER BY k.created_at",
            request.app[CLOCK](),
            tenant_id,
        )
    return json_response(SigningKeyList([signing_key_out(r) for r in rows]))
