"""The per-partition hash chain: hash = SHA-256(prev_hash ‖ canonical bytes).

`prev_hash` enters the digest as its 32 raw bytes; the envelope carries it as lowercase
hex. The first event of a partition links to 32 zero bytes.
"""

from __future__ import annotations

import hashlib

GENESIS = bytes(32)


def link(prev_hash: bytes, body: bytes) -> bytes:
    return hashlib.sha256(prev_hash + body).digest()


class ChainBroken(Exception):
    """An event does not link to the one before it: the log was edited, dropped or reordered."""

    def __init__(self, log: str, partition: int, position: int, reason: str) -> None:
        super().__init__(f"{log}[{partition}] position {position}: {reason}")
        self.log = log
        self.partition = partition
        self.position = position
        self.reason = reason
