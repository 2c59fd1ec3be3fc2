"""A follower's batch, applied exactly once: in one transaction with its tracking row
(log, partition, position, hash, Kafka offset), locked for the transaction, so followers
on every replica serialise per partition and the second skips what the first applied.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import msgspec

from shared.chain import ChainBroken
from shared.events import UnknownEventType
from shared.store.origin import Item
from shared.store.projection import BatchedProjection, Projection

log = logging.getLogger(__name__)


@dataclass
class Applied:
    position: int
    want: int | None = None  # set for a gap: the position the next record carries
    count: int = 0  # how many were applied


async def apply_tracked(
    pool: asyncpg.Pool,
    log_name: str,
    partition: int,
    items: Sequence[Item],
    projection: Projection,
    unknown: set[str],
) -> Applied:
    """Apply authenticated items in one transaction, from the tracked head on: only
    position `head + 1`, linked to the head's hash; the tracking row moves with them."""
    async with pool.acquire() as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT position, hash, kafka_offset FROM tracking "
            "WHERE log = $1 AND partition = $2 FOR UPDATE",
            log_name,
            partition,
        )
        assert row is not None
        position, head, offset = row["position"], bytes(row["hash"]), row["kafka_offset"]
        batched = projection if isinstance(projection, BatchedProjection) else None
        if batched is not None:
            batched.begin()
        applied = 0
        want: int | None = None
        for item in items:
            envelope = item.envelope
            if envelope.position <= position:
                if envelope.position == position and item.digest != head:
                    raise ChainBroken(
                        log_name,
                        partition,
                        position,
                        "the producer vouches for another record than the one applied here",
                    )
                continue
            if envelope.position > position + 1:
                want = envelope.position
                break
            if envelope.prev_hash != head.hex():
                raise ChainBroken(
                    log_name,
                    partition,
                    envelope.position,
                    "the producer's log does not link to the head this projection holds",
                )
            try:
                event = envelope.event()
            except msgspec.ValidationError as exc:
                # A known type whose data breaks its schema: a producer bug. Applying
                # around it would be wrong and skipping it forbidden: stop here.
                raise ChainBroken(
                    log_name,
                    partition,
                    envelope.position,
                    f"{envelope.type} does not match its schema: {exc}",
                ) from exc
            except UnknownEventType as exc:
                if str(exc) not in unknown:
                    unknown.add(str(exc))
                    log.warning(
                        "%s: event type %s is unknown to this build; tracked, not projected",
                        log_name,
                        exc,
                    )
            else:
                await projection.apply(conn, envelope, event)
            position, head = envelope.position, item.digest
            if item.offset is not None:
                offset = max(offset, item.offset)
            applied += 1
        if batched is not None and applied:
            await batched.flush(conn)
        if applied or offset != row["kafka_offset"]:
            await conn.execute(
                "UPDATE tracking SET position = $3, hash = $4, kafka_offset = $5, "
                "updated_at = now() WHERE log = $1 AND partition = $2",
                log_name,
                partition,
                position,
                head,
                offset,
            )
    return Applied(position, want, applied)
