"""A keyed index of user ids: find what names a user without storing their id.

Rows that exist only to be found again by user (an idempotency answer that names them, a
rate-limit window) carry `HMAC-SHA256(key, tenant ‖ user id)` instead of the id. Nothing
in the database can be turned back into the id (the key is derived from the service's KEK,
which the database never holds), yet erasure finds and deletes those rows by computing the
same value.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid

from shared.crypto.kek import Kek


class UserIndex:
    def __init__(self, key: bytes) -> None:
        self._key = key

    @classmethod
    def from_kek(cls, kek: Kek) -> UserIndex:
        return cls(kek.derive("user-index"))

    def of(self, tenant_id: uuid.UUID | None, user_id: str) -> bytes:
        tenant = tenant_id.bytes if tenant_id is not None else b"\0" * 16
        return hmac.new(self._key, tenant + user_id.encode(), hashlib.sha256).digest()

    def text(self, tenant_id: uuid.UUID | None, user_id: str) -> str:
        """The same, as a short text for keys (128 bits are plenty to tell users apart)."""
        return self.of(tenant_id, user_id)[:16].hex()
