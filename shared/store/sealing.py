"""Sealing: give committed, unsealed events their place in the chain.

Rows are taken in `seq` order among those committed *now*. A transaction that commits
late (a smaller `seq` than rows already sealed) is simply sealed in a later batch: the
relay selects "unsealed", never "seq > cursor", so nothing is skipped.
"""

from __future__ import annotations

import msgspec

from shared.chain import link
from shared.dbtypes import Conn
from shared.events import Envelope, canonical_bytes
from shared.store.eventstore import LogSpec

_HEADS = """
SELECT partition, sealed_position, sealed_hash FROM log_partitions ORDER BY partition FOR UPDATE
"""
_UNSEALED = """
SELECT seq, event_id, type, schema, tenant_id, stream_id, stream_version, occurred_at,
       partition, data
FROM events WHERE position IS NULL ORDER BY seq LIMIT $1
"""
_SEAL = """
UPDATE events SET position = u.position, prev_hash = u.prev_hash, hash = u.hash, body = u.body
FROM unnest($1::bigint[], $2::bigint[], $3::bytea[], $4::bytea[], $5::bytea[])
     AS u(seq, position, prev_hash, hash, body)
WHERE events.seq = u.seq
"""
_ADVANCE = """
UPDATE log_partitions SET sealed_position = u.position, sealed_hash = u.hash
FROM unnest($1::int[], $2::bigint[], $3::bytea[]) AS u(partition, position, hash)
WHERE log_partitions.partition = u.partition
"""


async def seal_batch(conn: Conn, log: LogSpec, limit: int = 1000) -> int:
    """Seal up to `limit` events in one transaction; returns how many were sealed."""
    async with conn.transaction():
        # Locking the heads first serialises sealers, even two that both think they lead:
        # the second one's SELECT of unsealed rows runs after the first one commits.
        heads = {
            r["partition"]: (r["sealed_position"], bytes(r["sealed_hash"]))
            for r in await conn.fetch(_HEADS)
        }
        rows = await conn.fetch(_UNSEALED, limit)
        if not rows:
            return 0
        seqs, positions, prevs, hashes, bodies = [], [], [], [], []
        for row in rows:
            position, prev = heads[row["partition"]]
            position += 1
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
                    position=position,
                    prev_hash=prev.hex(),
                )
            )
            digest = link(prev, body)
            heads[row["partition"]] = (position, digest)
            seqs.append(row["seq"])
            positions.append(position)
            prevs.append(prev)
            hashes.append(digest)
            bodies.append(body)
        await conn.execute(_SEAL, seqs, positions, prevs, hashes, bodies)
        parts = sorted({row["partition"] for row in rows})
        await conn.execute(
            _ADVANCE, parts, [heads[p][0] for p in parts], [heads[p][1] for p in parts]
        )
        return len(rows)
