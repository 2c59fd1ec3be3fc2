"""/.well-known/jwks.json: every public key a code still in circulation may be signed with."""

from __future__ import annotations

from aiohttp import web

from services.issuer.context import POOL
from shared.crypto.signing import jwk
from shared.http.json import json_response


async def jwks(request: web.Request) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch("SELECT key_id, public_key FROM signing_keys ORDER BY created_at")
    return json_response(
        {"keys": [jwk(r["key_id"], r["public_key"]) for r in rows]},
        headers={"Cache-Control": "public, max-age=60"},
    )


def routes() -> list[web.RouteDef]:
    return [web.get("/.well-known/jwks.json", jwks)]
