"""API keys: 256-bit random bearer tokens, kept only as their hash."""

from __future__ import annotations

import hashlib
import secrets


def new_api_key() -> str:
    return "qk_" + secrets.token_urlsafe(32)


def hash_key(token: str) -> str:
    # Keys are 256-bit random: a plain SHA-256 is as strong as a slow hash here, and fast.
    return hashlib.sha256(token.encode()).hexdigest()
