"""Personal data in events: sealed with a per-person key (AES-256-GCM), only ciphertext logged.

A person (one user of one tenant) gets a random pseudonym (`person`) and a key per
retention class and day. Every personal value an event carries (user id, display name,
real name, device id, IP, location) is sealed under that key: the log holds, and its hashes
cover, only the ciphertext. Destroying the key (erasure, or retention when its days are
over) makes those values unreadable for good while every hash still verifies.

A sealed value (shared/events/personal.py) is `{"k": key id, "c": base64url(nonce ‖
ciphertext ‖ tag)}`; the AEAD's associated data binds it to its key and its field, so a
value cannot be moved to another field or person unnoticed.
"""

from __future__ import annotations

import os
import secrets
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from shared.crypto.kek import Kek
from shared.crypto.signing import b64url, unb64url
from shared.events.personal import Sealed


def _aad(key_id: str, field: str) -> bytes:
    return f"qunma-pd/1:{key_id}:{field}".encode()


def new_person() -> str:
    """A pseudonym: random, so nothing about the person can be computed back from it."""
    return "p_" + secrets.token_hex(16)


@dataclass(frozen=True)
class PersonKey:
    key_id: str
    secret: bytes

    @classmethod
    def generate(cls) -> PersonKey:
        return cls(secrets.token_hex(8), AESGCM.generate_key(bit_length=256))

    def seal(self, field: str, value: str) -> Sealed:
        nonce = os.urandom(12)
        box = AESGCM(self.secret).encrypt(nonce, value.encode(), _aad(self.key_id, field))
        return Sealed(self.key_id, b64url(nonce + box))

    def wrap(self, kek: Kek) -> bytes:
        """The key as stored: sealed under the KEK."""
        return kek.seal(self.secret, _context(self.key_id))

    @classmethod
    def unwrap(cls, key_id: str, wrapped: bytes, kek: Kek) -> PersonKey:
        return cls(key_id, kek.open(wrapped, _context(key_id)))


def _context(key_id: str) -> bytes:
    return b"qunma-person-key:" + key_id.encode()


def unseal(sealed: Sealed, field: str, secret: bytes | None) -> str | None:
    """The value, or None when its key is gone (erased) or the ciphertext was altered."""
    if sealed.k == "":
        return sealed.c
    if secret is None:
        return None
    try:
        raw = unb64url(sealed.c)
        return AESGCM(secret).decrypt(raw[:12], raw[12:], _aad(sealed.k, field)).decode()
    except (InvalidTag, ValueError):
        return None
