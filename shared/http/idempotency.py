"""`Idempotency-Key` on every POST: the same key and body get the first response again.

The key is claimed with one `INSERT … ON CONFLICT DO NOTHING` before the handler runs, so
of two concurrent requests with one key exactly one runs; the other is told it is in
progress (409, retry). The same key with another body is a client bug: 422. Responses
below 500 are kept for 24 hours; a failure (5xx) releases the key so a retry can run.

The claim and the handler's own transaction are separate: if the process dies between the
handler's commit and the storing of its response, a retry runs the request again. Handlers
that must not repeat (issuing a code) are safe because the second run creates a second,
equally valid resource, never a corrupted one. A claim still running after `ABANDONED`
belonged to a process that died (no handler takes that long: the proxy in front gave up
long before), so a retry with the same body takes it over instead of being told "in
progress" until the key expires a day later.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from collections.abc import Callable

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Middleware

from shared.http.auth import PRINCIPAL
from shared.http.problems import Handler, Problem

log = logging.getLogger(__name__)

RETENTION = "24 hours"
ABANDONED = "60 seconds"
_KEY = re.compile(r"^[\x21-\x7e]{1,255}$")
_REPLAYED = "Idempotent-Replayed"


def idempotency_middleware(pool_of: Callable[[web.Application], asyncpg.Pool]) -> Middleware:
    @web.middleware
    async def idempotent(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method != "POST" or key is None:
            return await handler(request)
        if not _KEY.match(key):
            raise Problem(
                "invalid_request", "Idempotency-Key must be 1–255 visible ASCII characters"
            )
        who = request.get(PRINCIPAL)
        scope = str(who.tenant_id) if who is not None and who.tenant_id else "deployment"
        body = await request.read()
        fingerprint = hashlib.sha256(
            request.method.encode() + b" " + request.path_qs.encode() + b"\n" + body
        ).digest()
        pool = pool_of(request.app)
        async with pool.acquire() as conn:
            claimed = await conn.fetchval(
                "INSERT INTO idempotency_keys (scope, key, fingerprint) VALUES ($1, $2, $3) "
                "ON CONFLICT DO NOTHING RETURNING true",
                scope,
                key,
                fingerprint,
            )
            if not claimed:
                row = await conn.fetchrow(
                    "SELECT fingerprint, status, content_type, location, body "
                    "FROM idempotency_keys WHERE scope = $1 AND key = $2",
                    scope,
                    key,
                )
        if not claimed:
            if row is None:  # released between our insert and our read: run it
                return await idempotent(request, handler)
            if bytes(row["fingerprint"]) != fingerprint:
                raise Problem(
                    "idempotency_key_reused",
                    "this Idempotency-Key was sent before with another request",
                )
            if row["status"] is None:
                if await _take_over(pool, scope, key, fingerprint):
                    return await _run(request, handler, pool, scope, key)
                raise Problem(
                    "idempotency_in_progress",
                    "a request with this Idempotency-Key is still running",
                    headers={"Retry-After": "1"},
                )
            headers = {_REPLAYED: "true"}
            if row["location"]:
                headers["Location"] = row["location"]
            return web.Response(
                status=row["status"],
                body=row["body"],
                content_type=row["content_type"],
                headers=headers,
            )
        return await _run(request, handler, pool, scope, key)

    return idempotent


async def _run(
    request: web.Request, handler: Handler, pool: asyncpg.Pool, scope: str, key: str
) -> web.StreamResponse:
    """Run the request under a claim we hold, and keep its answer (or release the claim)."""
    try:
        try:
            response = await handler(request)
        except Problem as problem:
            response = problem.response()
    except BaseException:
        await _release(pool, scope, key)
        raise
    if response.status >= 500 or not isinstance(response, web.Response):
        await _release(pool, scope, key)
        return response
    async with pool.acquire() as conn:
        await conn.execute(
            "UPDATE idempotency_keys SET status = $3, content_type = $4, location = $5, "
            "body = $6 WHERE scope = $1 AND key = $2",
            scope,
            key,
            response.status,
            response.content_type,
            response.headers.get("Location"),
            response.body,
        )
    return response


async def _take_over(pool: asyncpg.Pool, scope: str, key: str, fingerprint: bytes) -> bool:
    """Claim a key whose first request was abandoned; of concurrent retries, one wins (the
    row lock makes the others re-check `created_at`, which the winner has just renewed)."""
    async with pool.acquire() as conn:
        taken: bool | None = await conn.fetchval(
            "UPDATE idempotency_keys SET created_at = now() "
            "WHERE scope = $1 AND key = $2 AND fingerprint = $3 AND status IS NULL "
            f"AND created_at < now() - interval '{ABANDONED}' RETURNING true",
            scope,
            key,
            fingerprint,
        )
    if taken:
        log.warning("idempotency key %r of %s: abandoned claim taken over", key, scope)
    return bool(taken)


async def _release(pool: asyncpg.Pool, scope: str, key: str) -> None:
    async with pool.acquire() as conn:
        await conn.execute("DELETE FROM idempotency_keys WHERE scope = $1 AND key = $2", scope, key)


async def forget_old_keys(pool: asyncpg.Pool, every: float = 600.0) -> None:
    """Runs for the service's lifetime: drops kept responses older than the retention."""
    while True:
        try:
            async with pool.acquire() as conn:
                await conn.execute(
                    "DELETE FROM idempotency_keys "
                    f"WHERE created_at < now() - interval '{RETENTION}'"
                )
        except (asyncpg.PostgresError, OSError) as exc:
            log.warning("forgetting old idempotency keys failed: %s", exc)
        await asyncio.sleep(every)
