"""`Idempotency-Key` on every authenticated POST: the same caller, key and body get the
first answer again.

The endpoint wrapper (shared/http/endpoints.py) calls `Idempotency.run` only after it has
checked the caller's scope, so a replay never gives a caller more than it may ask for. The
key is claimed inside the request's own transaction (`RequestPool.request_transaction`):
the claim row, the handler's writes and the answer commit together or not at all, so a
retry finds either the answer or nothing committed, never a request that ran without its
answer. A retry while the first request runs waits for it (up to 5 s, then 409
`idempotency_in_progress`); a request that rolled back, or whose process died, leaves the
key free at once, and so does an answer that says to retry later (it has `Retry-After`).

What is stored gives nothing away: the answer is bound to the API key that made it
(another key gets 422), sealed (AES-256-GCM) under a key derived from the caller's own
credential, which qunma never stores (it keeps only its SHA-256), and fingerprinted with an
HMAC under that key. The users an answer names are kept only as `UserIndex` values, so
erasure can delete the answers about a person (services/redeemer/application/erasure.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import os
import re
from collections.abc import Awaitable, Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
import msgspec
from aiohttp import web
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from shared.crypto.user_index import UserIndex
from shared.db import RequestPool
from shared.dbtypes import Conn
from shared.http.auth import Principal
from shared.http.problems import Problem
from shared.refusals import Refusal

log = logging.getLogger(__name__)

RETENTION = timedelta(hours=24)
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED = "Idempotent-Replayed"
_CLAIM = """
SELECT * FROM qunma_idempotency_claim(p_scope => $1, p_key => $2, p_key_id => $3,
                                      p_fingerprint => $4, p_retention => $5)
"""


class _RollBack(Exception):
    """The answer is not kept (a 5xx): undo the request's writes and its claim."""

    def __init__(self, response: web.StreamResponse) -> None:
        self.response = response


@dataclass(frozen=True)
class _Keys:
    """What the caller's credential derives for one Idempotency-Key."""

    fingerprint: bytes
    seal: bytes

    @classmethod
    def derive(cls, credential: str, scope: str, key: str) -> _Keys:
        material = HKDF(
            hashes.SHA256(), 64, salt=None, info=f"qunma-idempotency:{scope}:{key}".encode()
        ).derive(credential.encode())
        return cls(material[:32], material[32:])


def _user_ids(value: Any) -> list[str]:
    """Every `user_id` a JSON document names, at any depth."""
    found: list[str] = []
    if isinstance(value, dict):
        for name, item in value.items():
            if name == "user_id" and isinstance(item, str):
                found.append(item)
            else:
                found.extend(_user_ids(item))
    elif isinstance(value, list):
        for item in value:
            found.extend(_user_ids(item))
    return found


class Idempotency:
    def __init__(self, pool: RequestPool, users: UserIndex) -> None:
        self.pool = pool
        self.users = users

    async def run(
        self,
        request: web.Request,
        who: Principal,
        credential: str,
        named: list[str],
        handler: Callable[[], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        """Answer `request` once for its Idempotency-Key. `named` are the user ids the
        request itself names (its body, its path)."""
        key = request.headers["Idempotency-Key"]
        if not _KEY.match(key):
            raise Problem(
                "invalid_request", "Idempotency-Key must be 1–255 visible ASCII characters"
            )
        scope = str(who.tenant_id) if who.tenant_id else "deployment"
        keys = _Keys.derive(credential, scope, key)
        fingerprint = hmac.new(
            keys.fingerprint,
            request.method.encode()
            + b" "
            + request.path_qs.encode()
            + b"\n"
            + await request.read(),
            hashlib.sha256,
        ).digest()
        try:
            async with self.pool.request_transaction() as ambient:
                try:
                    row = await ambient.conn.fetchrow(
                        _CLAIM, scope, key, who.key_id, fingerprint, RETENTION
                    )
                except asyncpg.LockNotAvailableError:
                    raise Problem(
                        "idempotency_in_progress",
                        "a request with this Idempotency-Key is still running",
                        headers={"Retry-After": "1"},
                    ) from None
                assert row is not None
                if not row["claimed"]:
                    return self._replay(row, who, fingerprint, keys, scope, key)
                response = await self._answer(handler)
                if response.status >= 500 or not isinstance(response, web.Response):
                    raise _RollBack(response)
                if "Retry-After" in response.headers:
                    # "Not yet, retry" (a code still on its way, a group about to open) is no
                    # final answer: what the attempt recorded stays, the key is free again.
                    await ambient.conn.execute(
                        "DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2", scope, key
                    )
                else:
                    await self._keep(ambient.conn, response, who, named, keys, scope, key)
            return response
        except _RollBack as rolled_back:
            return rolled_back.response

    @staticmethod
    async def _answer(handler: Callable[[], Awaitable[web.StreamResponse]]) -> web.StreamResponse:
        try:
            return await handler()
        except Problem as problem:
            return problem.response()
        except Refusal as refusal:
            return Problem.of(refusal).response()

    def _replay(
        self,
        row: asyncpg.Record,
        who: Principal,
        fingerprint: bytes,
        keys: _Keys,
        scope: str,
        key: str,
    ) -> web.Response:
        if row["key_id"] != who.key_id:
            raise Problem(
                "idempotency_key_reused",
                "this Idempotency-Key was sent before by another API key",
            )
        if not hmac.compare_digest(bytes(row["fingerprint"]), fingerprint):
            raise Problem(
                "idempotency_key_reused",
                "this Idempotency-Key was sent before with another request",
            )
        sealed = bytes(row["body"])
        try:
            body = AESGCM(keys.seal).decrypt(sealed[:12], sealed[12:], _aad(scope, key))
        except InvalidTag:  # the same fingerprint opens it: only a damaged row gets here
            log.error("idempotency key %r of %s: its stored answer does not open", key, scope)
            raise
        headers = {_REPLAYED: "true"}
        if row["location"]:
            headers["Location"] = row["location"]
        return web.Response(
            status=row["status"], body=body, content_type=row["content_type"], headers=headers
        )

    async def _keep(
        self,
        conn: Conn,
        response: web.Response,
        who: Principal,
        named: list[str],
        keys: _Keys,
        scope: str,
        key: str,
    ) -> None:
        body = bytes(response.body or b"")  # type: ignore[arg-type]
        users = list(named)
        if response.content_type in ("application/json", "application/problem+json") and body:
            with suppress(msgspec.DecodeError):
                users.extend(_user_ids(msgspec.json.decode(body)))
        subjects = sorted({self.users.of(who.tenant_id, u) for u in users})
        nonce = os.urandom(12)
        sealed = nonce + AESGCM(keys.seal).encrypt(nonce, body, _aad(scope, key))
        await conn.execute(
            "UPDATE idempotency_keys SET status = $3, content_type = $4, location = $5, "
            "body = $6, subjects = $7 WHERE scope = $1 AND key = $2",
            scope,
            key,
            response.status,
            response.content_type,
            response.headers.get("Location"),
            sealed,
            subjects,
        )


def _aad(scope: str, key: str) -> bytes:
    return f"qunma-idempotency/1:{scope}:{key}".encode()


async def forget_old_keys(pool: RequestPool, every: float = 600.0) -> None:
    """Runs for the service's lifetime: drops kept answers older than the retention."""
    while True:
        try:
            async with pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM idempotency_keys WHERE created_at < now() - $1::interval",
                    RETENTION,
                )
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("forgetting old idempotency keys failed: %s", exc)
        await asyncio.sleep(every)


IDEMPOTENCY = web.AppKey("idempotency", Idempotency)
