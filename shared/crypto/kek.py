"""The key-encryption key (KEK): private keys are stored only as AES-256-GCM ciphertext under it."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF


class KekError(ValueError):
    pass


class Kek:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise KekError("QUNMA_KEK must be 32 bytes, base64-encoded")
        self._key = key
        self._aead = AESGCM(key)

    @classmethod
    def from_text(cls, text: str) -> Kek:
        try:
            return cls(base64.urlsafe_b64decode(text.strip() + "=" * (-len(text.strip()) % 4)))
        except (binascii.Error, ValueError) as exc:
            raise KekError("QUNMA_KEK is not valid base64") from exc

    @staticmethod
    def generate_text() -> str:
        return base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")

    def seal(self, plaintext: bytes, context: bytes) -> bytes:
        nonce = os.urandom(12)
        return nonce + self._aead.encrypt(nonce, plaintext, context)

    def open(self, sealed: bytes, context: bytes) -> bytes:
        try:
            return self._aead.decrypt(sealed[:12], sealed[12:], context)
        except InvalidTag as exc:
            raise KekError("a stored key does not open under this QUNMA_KEK") from exc

    def derive(self, purpose: str) -> bytes:
        """A 32-byte key for one purpose (HKDF-SHA256), so one secret serves several jobs
        without any two of them sharing a key."""
        return HKDF(hashes.SHA256(), 32, salt=None, info=f"qunma:{purpose}".encode()).derive(
            self._key
        )
