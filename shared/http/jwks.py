"""JSON Web Key Sets (RFC 7517) of Ed25519 keys (RFC 8037), and the log keys in them.

Both services publish /.well-known/jwks.json. A log key carries the extra member `log`
(the topic whose checkpoints it signs), so an auditor can pin the keys of each log from
outside the log itself.
"""

from __future__ import annotations

import msgspec
from aiohttp import web

from shared.db import RequestPool
from shared.http.endpoints import Api
from shared.http.json import json_response
from shared.store.log_keys import public_log_keys


class Jwk(msgspec.Struct, omit_defaults=True):
    kty: str
    crv: str
    x: str
    kid: str
    use: str
    alg: str
    log: str | None = None  # set on log keys: the log whose checkpoints it signs


class Jwks(msgspec.Struct):
    """The JSON Web Key Set (RFC 7517) of Ed25519 keys (RFC 8037)"""

    keys: list[Jwk]


def ed25519_jwk(key_id: str, public_b64: str, log: str | None = None) -> Jwk:
    return Jwk("OKP", "Ed25519", public_b64, key_id, "sig", "EdDSA", log)


async def log_jwks(pool: RequestPool, log_name: str) -> list[Jwk]:
    async with pool.acquire() as conn:
        keys = await public_log_keys(conn)
    return [ed25519_jwk(key_id, public, log_name) for key_id, public in keys]


JWKS_CACHE = {"Cache-Control": "public, max-age=60"}


def register_log_jwks(api: Api, pool_key: web.AppKey[RequestPool], log_name: str) -> None:
    """The JWKS of a service whose only keys are its log keys (the redeemer)."""

    @api.route(
        "GET",
        "/.well-known/jwks.json",
        summary="Public keys",
        tags=["log"],
        responses={200: Jwks},
    )
    async def jwks(request: web.Request) -> web.Response:
        """The keys this service signs its log's checkpoints with, every one it ever used."""
        keys = await log_jwks(request.app[pool_key], log_name)
        return json_response(Jwks(keys), headers=JWKS_CACHE)
