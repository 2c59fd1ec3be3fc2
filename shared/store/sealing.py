"""Sealing: give committed, unsealed events their place in the chain and in the tree.

Rows are taken in `seq` order among those committed *now*. A transaction that commits
late (a smaller `seq` than rows already sealed) is simply sealed in a later batch: the
relay selects "unsealed", never "seq > cursor", so nothing is skipped.

Each sealed event is also a leaf of its partition's Merkle tree (shared/audit/merkle.py);
the perfect subtrees it completes are stored, so proofs read a few rows. Every `every`
events, or `seconds` after the last checkpoint if anything came since, the sealer appends
a signed `CheckpointSealed` event to the partition, in the same transaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import msgspec

from shared.audit.merkle import Frontier, leaf_hash
from shared.chain import link
from shared.crypto.signing import SigningKey, b64url
from shared.dbtypes import Conn
from shared.events import Envelope, canonical_bytes, encode_data
from shared.events.log import CheckpointSealed, checkpoint_message
from shared.ids import uuid7
from shared.store.eventstore import LogSpec

# Subtrees of 16 leaves and more are stored; smaller ones are rebuilt from the events'
# hashes when a proof needs them (at most 14 leaves a proof). Storing every level cost the
# relay 6 ms per 1,000 events sealed; this level, under half a millisecond.
STORED_LEVEL = 4
RELAY_ACTOR = "system:relay"


@dataclass(frozen=True)
class CheckpointPolicy:
    every: int = 1000  # events after which a checkpoint follows at once
    seconds: float = 10.0  # the longest an event waits for a checkpoint that covers it


@dataclass(frozen=True)
class Checkpointer:
    policy: CheckpointPolicy
    key: SigningKey


_HEADS = """
SELECT partition, sealed_position, sealed_hash, tree_size, frontier, checkpoint_position,
       checkpoints, checkpoint_at <= now() - make_interval(secs => $1) AS checkpoint_due,
       now() AS now
FROM log_partitions ORDER BY partition FOR UPDATE
"""
_UNSEALED = """
SELECT seq, event_id, type, schema, tenant_id, stream_id, stream_version, occurred_at,
       partition, data, actor
FROM events WHERE position IS NULL ORDER BY seq LIMIT $1
"""
_SEAL = """
UPDATE events SET position = u.position, prev_hash = u.prev_hash, hash = u.hash, body = u.body
FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[])
     AS u(seq, position, prev_hash, hash, body)
WHERE events.seq = u.seq
"""
_INSERT_SEALED = """
INSERT INTO events (event_id, type, schema, tenant_id, stream_id, stream_version, occurred_at,
                    kafka_key, partition, data, position, prev_hash, hash, body, actor)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::uuid[], $5::text[], $6::int[],
                     $7::timestamptz[], $8::text[], $9::int[], $10::bytea[], $11::bigint[],
                     $12::bytea[], $13::bytea[], $14::bytea[], $15::text[])
"""
_NODES = """
INSERT INTO merkle_nodes (partition, level, idx, hash)
SELECT * FROM unnest($1::int[], $2::smallint[], $3::bigint[], $4::bytea[])
"""
_ADVANCE = """
UPDATE log_partitions SET sealed_position = $2, sealed_hash = $3, tree_size = $2, frontier = $4,
       checkpoint_position = $5, checkpoint_at = coalesce($6, checkpoint_at), checkpoints = $7
WHERE partition = $1
"""


def rfc3339(at: datetime) -> str:
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class _Head:
    """One partition's chain and tree while a batch is sealed."""

    partition: int
    position: int
    hash: bytes
    frontier: Frontier
    checkpoint_position: int
    checkpoint_at: datetime | None  # None: unchanged by this batch
    checkpoints: int
    due: bool
    changed: bool = False
    nodes: list[tuple[int, int, bytes]] = field(default_factory=list)

    def advance(self, digest: bytes) -> None:
        self.position += 1
        self.hash = digest
        self.changed = True
        for (level, idx), node in self.frontier.append(leaf_hash(digest)):
            if level >= STORED_LEVEL:
                self.nodes.append((level, idx, node))


def _frontier(size: int, hashes: list[bytes]) -> Frontier:
    levels = [level for level in range(size.bit_length() - 1, -1, -1) if size >> level & 1]
    assert len(levels) == len(hashes), "stored frontier does not match its tree size"
    return Frontier(size, list(zip(levels, hashes, strict=True)))


async def _catch_up_tree(conn: Conn, head: _Head, tree_size: int) -> None:
    """Build the tree of events sealed before trees were kept (a database from before
    migration 0004), so that it matches the chain before anything new is sealed."""
    head.position, size = tree_size, tree_size
    while True:
        rows = await conn.fetch(
            "SELECT hash FROM events WHERE partition = $1 AND position > $2 "
            "ORDER BY position LIMIT 10000",
            head.partition,
            size,
        )
        if not rows:
            return
        for row in rows:
            head.advance(bytes(row["hash"]))
        size += len(rows)


def _checkpoint(log: LogSpec, head: _Head, now: datetime, key: SigningKey) -> tuple[object, ...]:
    """Append a signed checkpoint of everything before it; returns its events row."""
    sealed_at = rfc3339(now)
    tree_size, tree_root, chain_head = head.position, head.frontier.root().hex(), head.hash.hex()
    signature = key.sign(
        checkpoint_message(log.name, head.partition, tree_size, tree_root, chain_head, sealed_at)
    )
    event = CheckpointSealed(
        tree_size=tree_size,
        tree_root=tree_root,
        chain_head=chain_head,
        sealed_at=sealed_at,
        key_id=key.key_id,
        signature=b64url(signature),
    )
    head.checkpoints += 1
    stream = f"checkpoints:{head.partition}"
    event_id, data, prev = uuid7(), encode_data(event), head.hash
    body = canonical_bytes(
        Envelope(
            event_id=event_id,
            type=CheckpointSealed.type_name(),
            schema=CheckpointSealed.SCHEMA,
            tenant_id=None,
            stream_id=stream,
            stream_version=head.checkpoints,
            occurred_at=now,
            data=msgspec.Raw(data),
            log=log.name,
            partition=head.partition,
            position=tree_size + 1,
            prev_hash=prev.hex(),
            actor=RELAY_ACTOR,
        )
    )
    digest = link(prev, body)
    head.advance(digest)
    head.checkpoint_position, head.checkpoint_at, head.due = head.position, now, False
    return (
        event_id,
        CheckpointSealed.type_name(),
        CheckpointSealed.SCHEMA,
        None,
        stream,
        head.checkpoints,
        now,
        stream,
        head.partition,
        data,
        head.position,
        prev,
        digest,
        body,
        RELAY_ACTOR,
    )


async def seal_batch(
    conn: Conn, log: LogSpec, limit: int = 1000, checkpointer: Checkpointer | None = None
) -> int:
    """Seal up to `limit` events in one transaction, with any checkpoints that fall due;
    returns how many events were sealed (checkpoints included)."""
    policy = checkpointer.policy if checkpointer else None
    async with conn.transaction():
        # Locking the heads first serialises sealers, even two that both think they lead:
        # the second one's SELECT of unsealed rows runs after the first one commits.
        # Without checkpoints the interval is NULL, so no partition is ever due.
        rows = await conn.fetch(_HEADS, policy.seconds if policy else None)
        heads: dict[int, _Head] = {}
        now: datetime = rows[0]["now"] if rows else datetime.now(UTC)
        for r in rows:
            head = _Head(
                r["partition"],
                r["sealed_position"],
                bytes(r["sealed_hash"]),
                _frontier(r["tree_size"], [bytes(h) for h in r["frontier"]]),
                r["checkpoint_position"],
                None,
                r["checkpoints"],
                bool(r["checkpoint_due"]) and r["sealed_position"] > r["checkpoint_position"],
            )
            if r["tree_size"] < r["sealed_position"]:
                sealed_position = head.position
                await _catch_up_tree(conn, head, r["tree_size"])
                assert head.position == sealed_position, "events table and heads disagree"
            heads[head.partition] = head
        unsealed = await conn.fetch(_UNSEALED, limit)
        seqs, positions, prevs, hashes, bodies = [], [], [], [], []
        made: list[tuple[object, ...]] = []
        for row in unsealed:
            head = heads[row["partition"]]
            prev = head.hash
            body = canonical_bytes(
                Envelope(
                    event_id=row["event_id"],
                    type=row["type"],
                    schema=row["schema"],
                    tenant_id=row["tenant_id"],
                    stream_id=row["stream_id"],
                    stream_version=row["stream_version"],
                    occurred_at=row["occurred_at"],
                    data=msgspec.Raw(row["data"]),
                    log=log.name,
                    partition=row["partition"],
                    position=head.position + 1,
                    prev_hash=prev.hex(),
                    actor=row["actor"],
                )
            )
            digest = link(prev, body)
            head.advance(digest)
            seqs.append(row["seq"])
            positions.append(head.position)
            prevs.append(prev)
            hashes.append(digest)
            bodies.append(body)
            if (
                checkpointer
                and head.position - head.checkpoint_position >= checkpointer.policy.every
            ):
                made.append(_checkpoint(log, head, now, checkpointer.key))
        if checkpointer:
            for head in heads.values():
                if head.due and head.position > head.checkpoint_position:
                    made.append(_checkpoint(log, head, now, checkpointer.key))
        changed = [h for h in heads.values() if h.changed]
        if not changed:
            return 0
        if seqs:
            await conn.execute(_SEAL, seqs, positions, prevs, hashes, bodies)
        if made:
            await conn.execute(
                _INSERT_SEALED, *(list(column) for column in zip(*made, strict=True))
            )
        nodes = [(h.partition, *n) for h in changed for n in h.nodes]
        if nodes:
            await conn.execute(_NODES, *(list(column) for column in zip(*nodes, strict=True)))
        await conn.executemany(
            _ADVANCE,
            [
                (
                    h.partition,
                    h.position,
                    h.hash,
                    [node for _, node in h.frontier.nodes],
                    h.checkpoint_position,
                    h.checkpoint_at,
                    h.checkpoints,
                )
                for h in changed
            ],
        )
        return len(seqs) + len(made)
