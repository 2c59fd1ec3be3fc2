"""Bearer authentication for `/v1`: tenant API keys, and the deployment's log-reader token."""

from __future__ import annotations

import hmac
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg
from aiohttp import web

from shared.crypto.api_keys import hash_key
from shared.http.problems import Handler, Problem
from shared.http.ratelimit import Rate
from shared.store.actor import acting_as

SCOPES = ("issue", "redeem", "audit", "admin")
LOG_SCOPE = "log"  # held only by the deployment's log token (service-to-service catch-up)
# Audit endpoints take a tenant's `audit` key (that tenant's events) or the log token (all).
AUDIT_SCOPE = "audit"


@dataclass(frozen=True)
class Principal:
    tenant_id: uuid.UUID | None
    key_id: uuid.UUID | None
    scopes: frozenset[str]
    rate: Rate | None = None  # the key's own rate limit; None: the deployment's

    @classmethod
    def of_key(cls, row: asyncpg.Record) -> Principal:
        """From an `api_keys` row (both services keep the same columns)."""
        rate = None
        if row["rate_per_second"] is not None:
            rate = Rate(float(row["rate_per_second"]), int(row["rate_burst"]))
        return cls(row["tenant_id"], row["key_id"], frozenset(row["scopes"]), rate)

    def require(self, scope: str) -> uuid.UUID:
        """The caller's tenant, if the key holds `scope` (`admin` holds every tenant scope)."""
        if scope not in self.scopes and not (scope in SCOPES and "admin" in self.scopes):
            raise Problem("forbidden", f"this API key lacks the {scope!r} scope")
        if self.tenant_id is None:
            raise Problem("forbidden", "this credential does not belong to a tenant")
        return self.tenant_id


KeyLookup = Callable[[str], Awaitable[Principal | None]]
PRINCIPAL = web.RequestKey("principal", Principal)
# The bearer token itself, for this request only: what the caller proves it holds (never
# stored; the idempotency answers it seals open only for a caller presenting it again).
CREDENTIAL = web.RequestKey("credential", str)


class CachedKeys:
    """API-key lookups kept for `ttl` seconds, so a busy service does not query the key of
    every request. A revoked key stays usable here for at most `ttl` seconds more. Only
    keys that exist are kept: random keys cannot fill the memory."""

    def __init__(self, lookup: KeyLookup, ttl: float = 1.0) -> None:
        self._lookup = lookup
        self._ttl = ttl
        self._known: dict[str, tuple[float, Principal]] = {}
        self._generation = 0

    def forget(self) -> None:
        """Drop every kept lookup (a key was revoked here): the next request asks again. A
        lookup already under way when this is called is not kept either."""
        self._generation += 1
        self._known.clear()

    async def __call__(self, key_hash: str) -> Principal | None:
        now = time.monotonic()
        hit = self._known.get(key_hash)
        if hit is not None and now - hit[0] < self._ttl:
            return hit[1]
        generation = self._generation
        found = await self._lookup(key_hash)
        if found is None:
            self._known.pop(key_hash, None)
        elif generation != self._generation:
            pass  # read before a revocation here committed: it may be stale already
        else:
            if len(self._known) > 10_000:
                self._known.clear()
            self._known[key_hash] = (now, found)
        return found


def principal(request: web.Request) -> Principal:
    found: Principal | None = request.get(PRINCIPAL)
    if found is None:
        raise Problem("unauthorized", "send Authorization: Bearer <api key>")
    return found


def auth_middleware(
    lookup: KeyLookup, log_token: str
) -> Callable[..., Awaitable[web.StreamResponse]]:
    log_principal = Principal(None, None, frozenset({LOG_SCOPE}))

    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path.startswith("/v1/"):
            header = request.headers.get("Authorization", "")
            scheme, _, token = header.partition(" ")
            token = token.strip()
            if scheme.lower() != "bearer" or not token:
                raise Problem(
                    "unauthorized",
                    "send Authorization: Bearer <api key>",
                    headers={"WWW-Authenticate": 'Bearer realm="qunma"'},
                )
            request[CREDENTIAL] = token
            if log_token and hmac.compare_digest(token.encode(), log_token.encode()):
                request[PRINCIPAL] = log_principal
                actor = "log-token"
            else:
                found = await lookup(hash_key(token))
                if found is None:
                    raise Problem(
                        "unauthorized",
                        "unknown or revoked API key",
                        headers={"WWW-Authenticate": 'Bearer error="invalid_token"'},
                    )
                request[PRINCIPAL] = found
                actor = f"key:{found.key_id}"
            # Every event this request records names who asked for it.
            with acting_as(actor):
                return await handler(request)
        return await handler(request)

    return authenticate
