"""Reading back what a relay sealed and published, and checking it is one unbroken chain."""

from __future__ import annotations

import asyncio
from collections import defaultdict

import asyncpg
from aiokafka import TopicPartition

from shared.chain import GENESIS, link
from shared.events.envelope import decode_envelope
from shared.kafka import KafkaSettings, reader


async def sealed_rows(dsn: str) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return await conn.fetch(
            "SELECT seq, event_id, partition, position, prev_hash, hash, body FROM events "
            "WHERE position IS NOT NULL ORDER BY partition, position"
        )
    finally:
        await conn.close()


def assert_chains(rows: list[asyncpg.Record]) -> None:
    """Positions run 1..n per partition and every hash links to the one before."""
    by_partition: dict[int, list[asyncpg.Record]] = defaultdict(list)
    for row in rows:
        by_partition[row["partition"]].append(row)
    for partition, items in by_partition.items():
        prev = GENESIS
        for expected, row in enumerate(items, start=1):
            assert row["position"] == expected, f"partition {partition}: gap at {expected}"
            assert bytes(row["prev_hash"]) == prev
            assert link(prev, bytes(row["body"])) == bytes(row["hash"])
            envelope = decode_envelope(bytes(row["body"]))
            assert (envelope.partition, envelope.position) == (partition, expected)
            prev = bytes(row["hash"])


async def read_topic(
    kafka: KafkaSettings, topic: str, partitions: int, until: int, timeout: float = 30
) -> list[tuple[int, bytes]]:
    """Every (partition, value) in the topic once `until` records have been read."""
    consumer = reader(kafka, "test-reader")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        for tp in tps:
            await consumer.seek_to_beginning(tp)
        found: list[tuple[int, bytes]] = []
        async with asyncio.timeout(timeout):
            while len(found) < until:
                batch = await consumer.getmany(timeout_ms=500)
                for tp, records in batch.items():
                    found.extend((tp.partition, r.value) for r in records)
            # anything more (a duplicate) arrives within a few fetches
            for _ in range(3):
                batch = await consumer.getmany(timeout_ms=200)
                for tp, records in batch.items():
                    found.extend((tp.partition, r.value) for r in records)
        return found
    finally:
        await consumer.stop()


async def wait_published(dsn: str, count: int, timeout: float = 30) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(timeout):
            while True:
                row = await conn.fetchrow(
                    "SELECT (SELECT count(*) FROM events WHERE position IS NOT NULL) AS sealed, "
                    "(SELECT coalesce(sum(published_position), 0) FROM log_partitions) AS published"
                )
                assert row is not None
                if row["sealed"] >= count and row["published"] >= count:
                    return
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def topic_positions(
    kafka: KafkaSettings, topic: str, partitions: int, timeout: float = 3
) -> dict[int, set[int]]:
    """The positions each partition of `topic` holds now (read until the topic goes quiet)."""
    consumer = reader(kafka, "test-positions")
    await consumer.start()
    found: dict[int, set[int]] = {p: set() for p in range(partitions)}
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        for tp in tps:
            await consumer.seek_to_beginning(tp)
        quiet = 0
        with_deadline = asyncio.get_running_loop().time() + timeout
        while quiet < 3 and asyncio.get_running_loop().time() < with_deadline:
            batch = await consumer.getmany(timeout_ms=300)
            quiet = 0 if batch else quiet + 1
            for tp, records in batch.items():
                found[tp.partition].update(decode_envelope(r.value).position for r in records)
        return found
    finally:
        await consumer.stop()


async def sealed_heads(dsn: str) -> dict[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {
            r["partition"]: r["sealed_position"]
            for r in await conn.fetch("SELECT partition, sealed_position FROM log_partitions")
        }
    finally:
        await conn.close()
