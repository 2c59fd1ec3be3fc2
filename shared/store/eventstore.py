"""Appending events to the store and reading a stream back.

A command inserts its events unsealed, in the transaction that changes its state rows.
`UNIQUE (stream_id, stream_version)` is the optimistic concurrency check: of two
writers that decided on the same stream version, exactly one commits.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from shared.dbtypes import Conn
from shared.events import Event, decode_data, encode_data
from shared.events.recorded import Recorded
from shared.ids import uuid7
from shared.store.actor import ACTOR


@dataclass(frozen=True)
class LogSpec:
    """One service's log: its Kafka topic (also the envelope's `log`) and partition count."""

    name: str
    partitions: int

    def partition_for(self, key: str) -> int:
        # Our own partitioner (not Kafka's murmur2): the relay names the partition
        # explicitly, so any client language can recompute where a key's chain lives.
        return int.from_bytes(hashlib.sha256(key.encode()).digest()[:4], "big") % self.partitions


@dataclass(frozen=True)
class Pending:
    """An event decided by a command, with the stream it extends."""

    event: Event
    stream_id: str
    stream_version: int
    tenant_id: uuid.UUID | None
    key: str


class ConcurrencyConflict(Exception):
    """Another writer appended to the stream first; reload and decide again."""

    def __init__(self, stream_id: str) -> None:
        super().__init__(f"stream {stream_id} changed concurrently")
        self.stream_id = stream_id


# One event as the eleven values of the events table's columns, for a statement (or a
# function, as the redeemer's scan) that inserts it alongside other rows.
def event_values(log: LogSpec, pending: Pending, occurred_at: datetime) -> tuple[object, ...]:
    return (
        uuid7(),
        pending.event.type_name(),
        pending.event.SCHEMA,
        pending.tenant_id,
        pending.stream_id,
        pending.stream_version,
        occurred_at,
        pending.key,
        log.partition_for(pending.key),
        encode_data(pending.event),
        ACTOR.get(),
    )


_INSERT = """
INSERT INTO events (event_id, type, schema, tenant_id, stream_id, stream_version,
                    occurred_at, kafka_key, partition, data, actor)
SELECT * FROM unnest($1::uuid[], $2::text[], $3::int[], $4::uuid[], $5::text[], $6::int[],
                     $7::timestamptz[], $8::text[], $9::int[], $10::bytea[], $11::text[])
"""


async def append(
    conn: Conn, log: LogSpec, pending: Sequence[Pending], occurred_at: datetime
) -> list[uuid.UUID]:
    """Insert `pending` unsealed; the caller's transaction decides whether they happened."""
    if not pending:
        return []
    ids = [uuid7() for _ in pending]
    try:
        await conn.execute(
            _INSERT,
            ids,
            [p.event.type_name() for p in pending],
            [p.event.SCHEMA for p in pending],
            [p.tenant_id for p in pending],
            [p.stream_id for p in pending],
            [p.stream_version for p in pending],
            [occurred_at] * len(pending),
            [p.key for p in pending],
            [log.partition_for(p.key) for p in pending],
            [encode_data(p.event) for p in pending],
            [ACTOR.get()] * len(pending),
        )
    except asyncpg.UniqueViolationError as exc:
        if exc.constraint_name == "events_stream_version":
            raise ConcurrencyConflict(pending[0].stream_id) from exc
        raise
    return ids


async def load_stream(conn: Conn, stream_id: str) -> list[Recorded]:
    rows = await conn.fetch(
        "SELECT stream_version, type, schema, data, tenant_id, occurred_at FROM events "
        "WHERE stream_id = $1 ORDER BY stream_version",
        stream_id,
    )
    return [recorded(r) for r in rows]


def recorded(row: asyncpg.Record) -> Recorded:
    """One event of a stream from a row with the columns `load_stream` selects (for a
    statement that reads a stream together with other rows)."""
    return Recorded(
        row["stream_version"],
        decode_data(row["type"], row["schema"], row["data"]),
        row["tenant_id"],
        row["occurred_at"],
    )
