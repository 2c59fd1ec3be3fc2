"""/.well-known/jwks.json: every public key a code still in circulation may be signed with,
and every key the issuer's log checkpoints were signed with."""

from __future__ import annotations

from aiohttp import web

from services.issuer.api.keys import KEYS_SQL
from services.issuer.api.registry import api
from services.issuer.context import CLOCK, POOL, SETTINGS
from shared.http.json import json_response
from shared.http.jwks import JWKS_CACHE, Jwks, ed25519_jwk, log_jwks


@api.route(
    "GET",
    "/.well-known/jwks.json",
    summary="Public signing keys",
    tags=["keys"],
    responses={200: Jwks},
)
async def jwks(request: web.Request) -> web.Response:
    """Code-signing keys: active ones, and retired ones while a code they signed can still
    be scanned. Log keys (with `log` set): every one that ever signed a checkpoint."""
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            f"SELECT * FROM ({KEYS_SQL}) k WHERE needed ORDER BY created_at", request.app[CLOCK]()
        )
    keys = [ed25519_jwk(r["key_id"], r["public_key"]) for r in rows]
    keys += await log_jwks(request.app[POOL], request.app[SETTINGS].issuer_topic)
    return json_response(Jwks(keys), headers=JWKS_CACHE)
