"""Reading a log record cheaply: only the envelope fields a check needs (`data` is skipped
unparsed, except in the two records that matter to the check itself), and the hashes of
RFC 6962 Merkle trees over the records' chain hashes.
"""

from __future__ import annotations

import hashlib

import msgspec

from shared.events.log import CheckpointSealed, LogKeyAdded


class Light(msgspec.Struct):
    """The envelope fields read from every record; `data` is skipped unparsed."""

    log: str
    partition: int
    position: int
    prev_hash: str
    type: str
    occurred_at: str


class CheckpointBody(msgspec.Struct):
    data: CheckpointSealed


class KeyBody(msgspec.Struct):
    stream_id: str
    data: LogKeyAdded


light = msgspec.json.Decoder(Light)
SPECIAL = frozenset({"CheckpointSealed", "LogKeyAdded"})
checkpoint_body = msgspec.json.Decoder(CheckpointBody)
key_body = msgspec.json.Decoder(KeyBody)
LEAF, NODE = hashlib.sha256(b"\x00"), hashlib.sha256(b"\x01")
sha256 = hashlib.sha256


def tree_root(stack: list[bytes]) -> bytes:
    if not stack:
        return hashlib.sha256(b"").digest()
    acc = stack[-1]
    for node in reversed(stack[:-1]):
        h = NODE.copy()
        h.update(node)
        h.update(acc)
        acc = h.digest()
    return acc


def own_hash(env: Light, body: bytes) -> bytes | None:
    """The hash of a record over the prev_hash it carries (None if that is not hex)."""
    try:
        return sha256(bytes.fromhex(env.prev_hash) + body).digest()
    except ValueError:
        return None
