"""Inclusion and consistency proofs (RFC 9162) from the stored tree of a partition.

A proof is always relative to a checkpoint: the tree head an auditor can check the
producer's signature on. Every range a proof needs is a few stored perfect subtrees
(merkle_nodes) or leaves (from events.hash), read in one query each.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import asyncpg
import msgspec

from shared.audit.merkle import (
    Node,
    NodeReader,
    consistency_ranges,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    range_hashes,
)
from shared.dbtypes import Conn
from shared.events.log import CheckpointSealed
from shared.store.sealing import STORED_LEVEL

_CHECKPOINT_COLUMNS = "event_id, partition, position, hash, body, data"


@dataclass(frozen=True)
class StoredCheckpoint:
    event_id: uuid.UUID
    partition: int
    position: int
    hash: bytes
    body: bytes  # canonical bytes, as published
    event: CheckpointSealed


@dataclass(frozen=True)
class StoredEvent:
    event_id: uuid.UUID
    tenant_id: uuid.UUID | None
    partition: int
    position: int
    hash: bytes
    body: bytes


def _checkpoint(r: asyncpg.Record) -> StoredCheckpoint:
    return StoredCheckpoint(
        r["event_id"],
        r["partition"],
        r["position"],
        bytes(r["hash"]),
        bytes(r["body"]),
        msgspec.json.decode(r["data"], type=CheckpointSealed),
    )


async def sealed_event(conn: Conn, event_id: uuid.UUID) -> StoredEvent | None:
    row = await conn.fetchrow(
        "SELECT event_id, tenant_id, partition, position, hash, body FROM events "
        "WHERE event_id = $1 AND position IS NOT NULL",
        event_id,
    )
    if row is None:
        return None
    return StoredEvent(
        row["event_id"],
        row["tenant_id"],
        row["partition"],
        row["position"],
        bytes(row["hash"]),
        bytes(row["body"]),
    )


async def latest_checkpoint(conn: Conn, partition: int) -> StoredCheckpoint | None:
    row = await conn.fetchrow(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM events "
        "WHERE partition = $1 AND type = 'CheckpointSealed' AND position IS NOT NULL "
        "ORDER BY position DESC LIMIT 1",
        partition,
    )
    return _checkpoint(row) if row else None


async def checkpoint_by_size(conn: Conn, partition: int, tree_size: int) -> StoredCheckpoint | None:
    """The checkpoint whose tree has `tree_size` leaves: it sits at position tree_size + 1."""
    row = await conn.fetchrow(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM events "
        "WHERE partition = $1 AND position = $2 AND type = 'CheckpointSealed'",
        partition,
        tree_size + 1,
    )
    return _checkpoint(row) if row else None


async def checkpoint_by_id(conn: Conn, event_id: uuid.UUID) -> StoredCheckpoint | None:
    row = await conn.fetchrow(
        f"SELECT {_CHECKPOINT_COLUMNS} FROM events "
        "WHERE event_id = $1 AND type = 'CheckpointSealed' AND position IS NOT NULL",
        event_id,
    )
    return _checkpoint(row) if row else None


def _reader(conn: Conn, partition: int) -> NodeReader:
    async def read(nodes: list[Node]) -> dict[Node, bytes]:
        found: dict[Node, bytes] = {}
        # Below STORED_LEVEL a node is rebuilt from its leaves: the events' hashes.
        small = [(level, idx) for level, idx in nodes if level < STORED_LEVEL]
        positions = sorted(
            {p for level, idx in small for p in range(idx << level, (idx + 1) << level)}
        )
        if positions:
            leaves = {
                r["position"] - 1: leaf_hash(bytes(r["hash"]))
                for r in await conn.fetch(
                    "SELECT position, hash FROM events "
                    "WHERE partition = $1 AND position = ANY($2::bigint[])",
                    partition,
                    [p + 1 for p in positions],
                )
            }
            for level, idx in small:
                span = [leaves.get(p) for p in range(idx << level, (idx + 1) << level)]
                if all(h is not None for h in span):
                    found[(level, idx)] = _subtree([h for h in span if h is not None])
        inner = [(level, idx) for level, idx in nodes if level >= STORED_LEVEL]
        if inner:
            for r in await conn.fetch(
                "SELECT m.level, m.idx, m.hash FROM merkle_nodes m "
                "JOIN unnest($2::smallint[], $3::bigint[]) AS u(level, idx) USING (level, idx) "
                "WHERE m.partition = $1",
                partition,
                [level for level, _ in inner],
                [idx for _, idx in inner],
            ):
                found[(r["level"], r["idx"])] = bytes(r["hash"])
        missing = set(nodes) - set(found)
        if missing:
            raise LookupError(f"partition {partition}: tree nodes missing: {sorted(missing)[:5]}")
        return found

    return read


def _subtree(leaves: list[bytes]) -> bytes:
    """The root of a perfect subtree from its leaves, left to right."""
    while len(leaves) > 1:
        leaves = [node_hash(leaves[i], leaves[i + 1]) for i in range(0, len(leaves), 2)]
    return leaves[0]


async def inclusion_path(conn: Conn, partition: int, index: int, tree_size: int) -> list[bytes]:
    """The audit path of leaf `index` (position index + 1) in the tree of `tree_size`."""
    return await range_hashes(inclusion_ranges(index, tree_size), _reader(conn, partition))


async def consistency_path(conn: Conn, partition: int, first: int, second: int) -> list[bytes]:
    """The proof that the tree of `first` leaves is a prefix of the tree of `second`."""
    return await range_hashes(consistency_ranges(first, second), _reader(conn, partition))
