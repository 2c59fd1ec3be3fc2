"""The key-encryption key (KEK): private keys are stored only as AES-256-GCM ciphertext under it."""

from __future__ import annotations

import base64
import binascii
import os

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM


class KekError(ValueError):
    pass


class Kek:
    def __init__(self, key: bytes) -> None:
        if len(key) != 32:
            raise KekError("QUNMA_KEK must be 32 bytes, base64-encoded")
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
