"""/.well-known/jwks.json: every public key a code still in circulation may be signed with."""

from __future__ import annotations

import msgspec
from aiohttp import web

from services.issuer.api.keys import KEYS_SQL
from services.issuer.api.registry import api
from services.issuer.context import CLOCK, POOL
from shared.http.json import json_response


class Jwk(msgspec.Struct):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str


class Jwks(msgspec.Struct):
    """The JSON Web Key Set (RFC 7517) of Ed25519 keys (RFC 8037)"""

    keys: list[Jwk]


@api.route(
    "GET",
    "/.well-known/jwks.json",
    summary="Public signing keys",
    tags=["keys"],
    responses={200: Jwks},
)
async def jwks(request: web.Request) -> web.Response:
    """Active keys, and retired keys while a code they signed can still be scanned."""
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            f"SELECT * FROM ({KEYS_SQL}) k WHERE needed ORDER BY created_at", request.app[CLOCK]()
        )
    return json_response(
        Jwks([Jwk("OKP", "Ed25519", r["public_key"], r["key_id"], "sig", "EdDSA") for r in rows]),
        headers={"Cache-Control": "public, max-age=60"},
    )
