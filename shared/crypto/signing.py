"""Ed25519 signing keys (RFC 8032) and their public form (JWK, RFC 8037)."""

from __future__ import annotations

import base64
import os
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from shared.crypto.kek import Kek

ALGORITHM = "Ed25519"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class SigningKey:
    key_id: str  # 16 hex digits: 8 random bytes, also carried in every code token
    private: Ed25519PrivateKey

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(os.urandom(8).hex(), Ed25519PrivateKey.generate())

    @property
    def public_b64(self) -> str:
        return b64url(
            self.private.public_key().public_bytes(
                serialization.Encoding.Raw, serialization.PublicFormat.Raw
            )
        )

    def sign(self, message: bytes) -> bytes:
        return self.private.sign(message)

    def seal(self, kek: Kek) -> bytes:
        raw = self.private.private_bytes(
            serialization.Encoding.Raw,
            serialization.PrivateFormat.Raw,
            serialization.NoEncryption(),
        )
        return kek.seal(raw, _context(self.key_id))

    @classmethod
    def open(cls, key_id: str, sealed: bytes, kek: Kek) -> SigningKey:
        return cls(key_id, Ed25519PrivateKey.from_private_bytes(kek.open(sealed, _context(key_id))))


def _context(key_id: str) -> bytes:
    return b"qunma-signing-key:" + key_id.encode()


@lru_cache(maxsize=4096)
def _public_key(public_b64: str) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(unb64url(public_b64))


def verify(public_b64: str, signature: bytes, message: bytes) -> bool:
    try:
        _public_key(public_b64).verify(signature, message)
    except (InvalidSignature, ValueError):
        return False
    return True
