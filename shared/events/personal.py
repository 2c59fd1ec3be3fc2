"""How personal values travel in events: sealed (shared/crypto/personal.py), never in clear.

Events about a person name them by `person`, a random pseudonym (stable for one user of
one tenant, unlinkable to them once their data is erased), and carry their user id, names,
device id, IP and location only as `Sealed` values.
"""

from __future__ import annotations

import hashlib

import msgspec


class Sealed(msgspec.Struct, frozen=True):
    """`k`: the person key's id ("" for a value logged in clear before sealing existed);
    `c`: base64url(nonce ‖ AES-256-GCM ciphertext ‖ tag), or the clear value when `k` is ""."""

    k: str
    c: str


def legacy_person(user_id: str) -> str:
    """The pseudonym given to a user whose events were logged before pseudonyms existed;
    the redeemer's migration 0004 computes the same in SQL."""
    return "legacy-" + hashlib.sha256(user_id.encode()).hexdigest()[:32]
