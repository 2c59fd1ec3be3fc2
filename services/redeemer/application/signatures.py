"""Is this QR token the issuer's? Its Ed25519 signature, checked with the public key it names.

Public keys come from `SigningKeyAdded` events in the projection and never change, so a
key found is kept for the process, and a token verified once is kept too (a printed code is
scanned by many people). A key id the projection does not hold is where a forger, or a
tenant probing, could make every scan wait: so the wait is bounded by what can still be on
its way. While the projection is behind the issuer's log it waits (up to
`propagation_wait`) for it to move; once caught up it waits at most `fresh_wait` (100 ms)
for the follower to receive anything more ("caught up" is as of the last fetch, and a key
committed a moment ago may be in the next), and then the key id is remembered as unknown
for `NEGATIVE_TTL` seconds, so repeating it costs nothing at all. Admission is fair between
tenants (shared/http/admission.py), so even these waits hold only their own tenant's slots.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Protocol

import asyncpg

from shared import codetoken
from shared.refusals import Reason, Refusal

_KEY = "SELECT tenant_id, public_key FROM signing_keys WHERE key_id = $1"
NEGATIVE_TTL = 2.0  # seconds a key id found unknown is answered as unknown without a lookup
_CACHED = 10_000


class Projection(Protocol):
    """What the follower of the issuer's log tells about how far it is."""

    @property
    def caught_up(self) -> bool: ...

    @property
    def version(self) -> int: ...

    async def next_round(self, timeout: float) -> None: ...


class CodeSignatures:
    def __init__(
        self,
        pool: asyncpg.Pool,
        projection: Projection,
        *,
        propagation_wait: float = 3.0,
        fresh_wait: float = 0.1,
    ) -> None:
        self.pool = pool
        self.projection = projection
        self.propagation_wait = propagation_wait
        self.fresh_wait = fresh_wait
        self._keys: dict[str, asyncpg.Record] = {}
        self._unknown: dict[str, float] = {}  # key id -> when it was found unknown
        self._verified: dict[str, tuple[codetoken.CodeToken, uuid.UUID]] = {}
        self.lookups = 0  # lookups of key ids not held in memory
        self.unknown_answered_from_memory = 0

    async def verify(
        self, payload: str, tenant_id: uuid.UUID | None = None
    ) -> tuple[codetoken.CodeToken, uuid.UUID]:
        """The token in `payload` and its tenant, if its signature verifies; else invalid_code.
        With `tenant_id`, another tenant's code is answered exactly as one that does not exist."""
        text = codetoken.token_from_payload(payload)
        known = self._verified.get(text)
        if known is not None:
            token, owner = known
            if tenant_id is not None and owner != tenant_id:
                raise Refusal(Reason.INVALID_CODE, "no such code")
            return token, owner
        try:
            token = codetoken.parse(text)
        except codetoken.InvalidToken as exc:
            raise Refusal(Reason.INVALID_CODE, f"this is not a qunma code: {exc}") from None
        key = await self.key(token.key_id)
        if key is None:
            raise Refusal(
                Reason.INVALID_CODE, "the code is signed by a key this service does not know"
            )
        if not token.verify(key["public_key"]):
            raise Refusal(Reason.INVALID_CODE, "the code's signature does not verify")
        if len(self._verified) >= _CACHED:
            self._verified.clear()
        self._verified[text] = (token, key["tenant_id"])
        if tenant_id is not None and key["tenant_id"] != tenant_id:
            raise Refusal(Reason.INVALID_CODE, "no such code")
        return token, key["tenant_id"]

    async def key(self, key_id: str) -> asyncpg.Record | None:
        found = self._keys.get(key_id)
        if found is not None:
            return found
        since = self._unknown.get(key_id)
        if since is not None and time.monotonic() - since < NEGATIVE_TTL:
            self.unknown_answered_from_memory += 1
            return None
        found = await self._lookup(key_id)
        if found is None:
            found = await self._await_propagation(key_id)
        if found is None:
            if len(self._unknown) >= _CACHED:
                self._unknown.clear()
            self._unknown[key_id] = time.monotonic()
            return None
        self._unknown.pop(key_id, None)
        self._keys[key_id] = found  # public keys never change: kept for the process
        return found

    async def _await_propagation(self, key_id: str) -> asyncpg.Record | None:
        """Look again each time the projection moves, for as long as the key can still be
        on its way."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.propagation_wait
        rounds = 0
        while True:
            caught_up = self.projection.caught_up
            if caught_up and rounds:
                return None  # a fetch round since we looked, and still caught up
            left = deadline - loop.time()
            if left <= 0:
                return None
            version = self.projection.version
            await self.projection.next_round(min(left, self.fresh_wait if caught_up else 0.5))
            rounds += 1
            if self.projection.version != version:
                found = await self._lookup(key_id)
                if found is not None:
                    return found

    async def _lookup(self, key_id: str) -> asyncpg.Record | None:
        self.lookups += 1
        async with self.pool.acquire() as conn:
            row: asyncpg.Record | None = await conn.fetchrow(_KEY, key_id)
        return row
