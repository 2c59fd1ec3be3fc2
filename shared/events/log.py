"""The log's own vocabulary, written by both services: the keys that sign a log's
checkpoints, and the checkpoints themselves.

A checkpoint is an event of the partition it seals. It covers every event before it
(positions 1 … `tree_size`): `chain_head` is the chain hash at `tree_size` and `tree_root`
the RFC 9162 Merkle tree head over those events (shared/audit/merkle.py). The producing
service signs both with its log key, so an auditor who holds one checkpoint can tell
whether the log it reads is the one the service wrote.
"""

from __future__ import annotations

import msgspec

from shared.events.base import Event, event_type

# Every log key event goes to one stream (hence one partition), so keys are ordered.
LOG_KEYS_STREAM = "log-keys"


@event_type
class LogKeyAdded(Event, frozen=True):
    """The Ed25519 public key (base64url, RFC 8032) that signs this log's checkpoints from
    now on. `service` is the producer (`issuer`, `redeemer`). A key after the first is
    endorsed by the one before it: `endorsement` is that key's signature over
    `key_message(…)` of this one, so a key slipped into the log by someone else stands out."""

    key_id: str
    service: str
    algorithm: str
    public_key: str
    endorsed_by: str | None = None
    endorsement: str | None = None


@event_type
class CheckpointSealed(Event, frozen=True):
    """This partition's chain head and Merkle tree head over positions 1 … `tree_size`,
    signed (`signature`, base64url Ed25519) by the log key `key_id` over
    `checkpoint_message(…)`. `sealed_at` is RFC 3339 UTC, signed as written."""

    tree_size: int
    tree_root: str
    chain_head: str
    sealed_at: str
    key_id: str
    signature: str


_canonical = msgspec.json.Encoder(order="sorted")


def checkpoint_message(
    log: str, partition: int, tree_size: int, tree_root: str, chain_head: str, sealed_at: str
) -> bytes:
    """The bytes a checkpoint signature covers: a fixed prefix, then JSON with sorted keys
    and no spaces, which any language can rebuild."""
    return b"qunma-checkpoint/1\n" + _canonical.encode(
        {
            "chain_head": chain_head,
            "log": log,
            "partition": partition,
            "sealed_at": sealed_at,
            "tree_root": tree_root,
            "tree_size": tree_size,
        }
    )


def key_message(log: str, service: str, key_id: str, public_key: str) -> bytes:
    """The bytes a key endorsement covers."""
    return b"qunma-log-key/1\n" + _canonical.encode(
        {"key_id": key_id, "log": log, "public_key": public_key, "service": service}
    )


def batch_message(log: str, partition: int, position: int, chain_hash: str) -> bytes:
    """The bytes a publish batch's signature covers: the chain hash (lowercase hex) of the
    batch's last record, at its position. The chain links every record before it, so this
    one signature vouches for the whole partition up to `position`."""
    return b"qunma-batch/1\n" + _canonical.encode(
        {"hash": chain_hash, "log": log, "partition": partition, "position": position}
    )
