"""Invite codes: what a person types to join through an `invite_code` code.

The issuer's `CodeIssued` event carries only `invite_code_hash`, and everyone who can read
the topic can read the event: a plain hash of a short code is reversed offline in a second.
So the hash is an HMAC-SHA256 under the deployment's invite secret, which only the two
services hold (`QUNMA_INVITE_SECRET`), written `hmac-sha256:{key id}:{hex}`; the key id
(the first 8 hex digits of SHA-256 of the secret) says which secret made it. Events from
before carry a bare SHA-256 hex of `code id ‖ code`, still accepted.

Generated codes are 8 characters of a 31-letter alphabet without look-alikes (no 0, O, 1,
I, L): about 8.5 × 10¹¹ of them, against at most 5 wrong answers per person and 20 per
address per code every 10 minutes. Answers are compared without regard to case or spaces
around them.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
GENERATED_LENGTH = 8
_SCHEME = "hmac-sha256"


def new_invite_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(GENERATED_LENGTH))


def normalize(answer: str) -> str:
    return answer.strip().upper()


def key_id(secret: bytes) -> str:
    return hashlib.sha256(secret).hexdigest()[:8]


def invite_code_hash(secret: bytes, code_id: uuid.UUID, invite_code: str) -> str:
    mac = hmac.new(secret, code_id.bytes + normalize(invite_code).encode(), hashlib.sha256)
    return f"{_SCHEME}:{key_id(secret)}:{mac.hexdigest()}"


def invite_code_matches(
    secret: bytes, code_id: uuid.UUID, answer: str, expected: str | None
) -> bool:
    if not expected:
        return False
    if expected.startswith(f"{_SCHEME}:"):
        return hmac.compare_digest(invite_code_hash(secret, code_id, answer), expected)
    # An event from before keyed hashes: SHA-256 of the code as the integrator gave it.
    legacy = hashlib.sha256(code_id.bytes + answer.strip().encode()).hexdigest()
    return hmac.compare_digest(legacy, expected)
