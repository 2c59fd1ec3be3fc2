"""The tenant's active signing key, opened from its sealed form once per process."""

from __future__ import annotations

import uuid

from shared.crypto.kek import Kek
from shared.crypto.signing import SigningKey
from shared.dbtypes import Conn


class SigningKeys:
    def __init__(self, kek: Kek) -> None:
        self.kek = kek
        self._opened: dict[str, SigningKey] = {}

    async def active(self, conn: Conn, tenant_id: uuid.UUID) -> SigningKey:
        row = await conn.fetchrow(
            "SELECT k.key_id, s.sealed FROM signing_keys k "
            "JOIN signing_key_secrets s USING (key_id) WHERE k.tenant_id = $1 AND k.active",
            tenant_id,
        )
        if row is None:
            raise LookupError(f"tenant {tenant_id} has no active signing key")
        return self.opened(row["key_id"], bytes(row["sealed"]))

    def opened(self, key_id: str, sealed: bytes) -> SigningKey:
        """The key a row read elsewhere names (`active` in a statement of its own)."""
        key = self._opened.get(key_id)
        if key is None:
            key = SigningKey.open(key_id, sealed, self.kek)
            self._opened[key.key_id] = key
        return key

    async def store(self, conn: Conn, key: SigningKey) -> None:
        """Keep the private half, sealed; call after the SigningKeyAdded row exists."""
        await conn.execute(
            "INSERT INTO signing_key_secrets (key_id, sealed) VALUES ($1, $2)",
            key.key_id,
            key.seal(self.kek),
        )
        self._opened[key.key_id] = key
