"""The signed token inside every QR code.

    token = base64url( version:1 | code_id:16 | key_id:8 | expires:8 | signature:64 )

`version` is 1 for a code and 2 for a live code (活码, `code_id` is then the live code's
id). `expires` is Unix seconds, big-endian, 0 for a permanent code; it is the expiry when
the code was issued (an extension later is in the log, not in the printed QR). The Ed25519 signature
covers `b"qunma-code:" + version..expires`, the prefix keeping these signatures apart
from any other use of the key. The QR text is `{public_url}/j/{token}`.
"""

from __future__ import annotations

import binascii
import struct
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from shared.crypto.signing import SigningKey, b64url, unb64url, verify

VERSION = 1
LIVE_VERSION = 2
KINDS = {VERSION: "code", LIVE_VERSION: "live"}
_HEADER = struct.Struct(">B16s8sQ")
_SIGNATURE = 64
_DOMAIN = b"qunma-code:"
LENGTH = _HEADER.size + _SIGNATURE


class InvalidToken(ValueError):
    pass


@dataclass(frozen=True)
class CodeToken:
    kind: str  # "code" or "live"
    code_id: uuid.UUID
    key_id: str
    expires_at: datetime | None
    signed: bytes
    signature: bytes

    def verify(self, public_b64: str) -> bool:
        return verify(public_b64, self.signature, _DOMAIN + self.signed)


def issue(
    code_id: uuid.UUID, expires_at: datetime | None, key: SigningKey, *, live: bool = False
) -> str:
    expires = int(expires_at.timestamp()) if expires_at is not None else 0
    version = LIVE_VERSION if live else VERSION
    header = _HEADER.pack(version, code_id.bytes, bytes.fromhex(key.key_id), expires)
    return b64url(header + key.sign(_DOMAIN + header))


def parse(token: str) -> CodeToken:
    """Decode the token's fields; the signature is checked separately, with the key it names."""
    if not token or len(token) > 200:
        raise InvalidToken("the token has the wrong length")
    try:
        raw = unb64url(token)
    except (binascii.Error, ValueError) as exc:
        raise InvalidToken("the token is not base64url") from exc
    if len(raw) != LENGTH:
        raise InvalidToken("the token has the wrong length")
    # One spelling per token: base64 decoding also takes padding, other alphabets' letters
    # and unused low bits, so one code could be written (and counted, cached) many ways.
    if b64url(raw) != token:
        raise InvalidToken("the token is not in canonical base64url")
    version, code_id, key_id, expires = _HEADER.unpack(raw[: _HEADER.size])
    if version not in KINDS:
        raise InvalidToken(f"unknown token version {version}")
    return CodeToken(
        kind=KINDS[version],
        code_id=uuid.UUID(bytes=code_id),
        key_id=key_id.hex(),
        expires_at=datetime.fromtimestamp(expires, UTC) if expires else None,
        signed=raw[: _HEADER.size],
        signature=raw[_HEADER.size :],
    )


def payload_url(public_url: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/j/{token}"


def token_from_payload(payload: str) -> str:
    """Accept the QR text (`…/j/{token}`, with or without query) or the bare token."""
    text = payload.strip()
    if "/j/" in text:
        text = text.rsplit("/j/", 1)[1]
    return text.split("?", 1)[0].split("#", 1)[0]
