"""The follower applies each position once, in order: duplicates skipped, gaps filled from
the producer's log API, broken records replaced; two follower processes never apply twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager

import aiohttp
import asyncpg
import msgspec
import pytest
from aiokafka import AIOKafkaProducer

from shared.chain import link
from shared.clock import utcnow
from shared.events.envelope import canonical_bytes, decode_envelope
from shared.events.issuer import GroupCreated
from shared.ids import uuid7
from shared.kafka import KafkaSettings, ensure_topics
from shared.store import migrate
from shared.store.eventstore import LogSpec, Pending, append
from shared.store.follower import Follower
from shared.store.log_client import LogClient
from shared.store.log_setup import ensure_log
from shared.store.origin import batch_headers
from shared.store.sealing import seal_batch
from tests.support.follow import APPLIED, RecordingProjection
from tests.support.infra import Infra, topic_name
from tests.support.logserver import LOG_KEY, TOKEN, log_server
from tests.support.processes import finish, python_module

# A record as the relay publishes it: the canonical bytes and the chain hash header.
Item = tuple[bytes, bytes | None]
Doctor = Callable[[list[Item]], list[Item]]


async def _producer_with_sealed_events(dsn: str, log: LogSpec, count: int) -> list[Item]:
    """`count` sealed events in one partition's chain, in order, as the relay would send them."""
    conn = await asyncpg.connect(dsn)
    try:
        await ensure_log(conn, log)
        async with conn.transaction():
            await append(
                conn,
                log,
                [
                    Pending(
                        GroupCreated(group_id=uuid7(), name=f"g{i}", max_members=5),
                        f"s{i}",
                        1,
                        uuid.UUID(int=1),
                        "one-key",
                    )
                    for i in range(count)
                ],
                utcnow(),
            )
        await seal_batch(conn, log)
        rows = await conn.fetch("SELECT body, hash FROM events ORDER BY position")
        return [(bytes(r["body"]), bytes(r["hash"])) for r in rows]
    finally:
        await conn.close()


async def _publish(
    kafka: KafkaSettings, log: LogSpec, items: list[Item], *, sign: bool = True
) -> None:
    """As the relay publishes one batch: each record with its hash, the last one signed by
    the producer's log key (unless `sign` is off, as a forger without the key would)."""
    await ensure_topics(kafka, {log.name: log.partitions})
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, acks="all", enable_idempotence=False
    )
    await producer.start()
    try:
        for index, (value, digest) in enumerate(items):
            headers = [("hash", digest.hex().encode())] if digest is not None else []
            if sign and index == len(items) - 1:
                envelope = decode_envelope(value)
                chain_hash = link(bytes.fromhex(envelope.prev_hash), value)
                headers += batch_headers(LOG_KEY, log.name, 0, envelope.position, chain_hash)
            await producer.send_and_wait(log.name, value=value, partition=0, headers=headers)
    finally:
        await producer.stop()


@asynccontextmanager
async def _following(
    infra: Infra, log: LogSpec, api: str
) -> AsyncIterator[tuple[Follower, asyncpg.Pool]]:
    async with infra.database([*migrate.store_migrations(), APPLIED]) as dsn:
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
        assert pool is not None
        async with aiohttp.ClientSession() as session:
            follower = Follower(
                pool,
                log,
                KafkaSettings(infra.broker.bootstrap),
                RecordingProjection(),
                LogClient(api, TOKEN, session),
                name="t",
            )
            task = asyncio.create_task(follower.run())
            try:
                yield follower, pool
            finally:
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
                await pool.close()


async def _wait_position(follower: Follower, position: int) -> None:
    async with asyncio.timeout(30):
        while follower.stats.partitions[0].position < position:
            await asyncio.sleep(0.02)


def _edited(item: Item, *, rehash: bool) -> Item:
    """The same event with its data changed and re-encoded; with `rehash`, a header to match."""
    envelope = decode_envelope(item[0])
    data = msgspec.json.decode(bytes(envelope.data))
    data["name"] = "tampered"
    forged = msgspec.structs.replace(
        envelope, data=msgspec.Raw(msgspec.json.encode(data, order="sorted"))
    )
    body = canonical_bytes(forged)
    return body, link(bytes.fromhex(envelope.prev_hash), body) if rehash else item[1]


@pytest.mark.parametrize(
    ("case", "doctor", "duplicates", "filled"),
    [
        ("in order", lambda v: v, 0, 0),
        ("duplicate and gap", lambda v: [v[0], v[1], v[1], v[3], v[4], v[5]], 1, 1),
        # The chain is walked by hashes, not arrival order: nothing to fill.
        ("reordered", lambda v: [v[0], v[2], v[1], v[3], v[4], v[5]], 0, 0),
        (
            "corrupt record",
            lambda v: [v[0], v[1], (v[2][0][:-9] + b"garbage!}", v[2][1]), *v[3:]],
            0,
            1,
        ),
        ("edited record", lambda v: [v[0], v[1], _edited(v[2], rehash=False), *v[3:]], 0, 1),
        ("record without its hash", lambda v: [v[0], v[1], (v[2][0], None), *v[3:]], 0, 1),
        ("tail missing", lambda v: v[:4], 0, 1),
    ],
)
async def test_each_position_is_applied_once_in_order(
    infra: Infra, case: str, doctor: Doctor, duplicates: int, filled: int
) -> None:
    log = LogSpec(topic_name("follow"), 1)
    async with infra.database(migrate.store_migrations()) as producer_dsn:
        bodies = await _producer_with_sealed_events(producer_dsn, log, 6)
        async with log_server(producer_dsn, log) as api:
            await _publish(KafkaSettings(infra.broker.bootstrap), log, doctor(bodies))
            async with _following(infra, log, api) as (follower, pool):
                if case == "tail missing":
                    # Nothing in Kafka reveals 5 and 6: they arrive when a later record does.
                    await _wait_position(follower, 4)
                    await _publish(KafkaSettings(infra.broker.bootstrap), log, [bodies[5]])
                await _wait_position(follower, 6)
                async with pool.acquire() as conn:
                    applied = await conn.fetch(
                        "SELECT position, event_id FROM applied ORDER BY applied_at"
                    )
                    tracking = await conn.fetchrow("SELECT position, hash FROM tracking")
                assert [r["position"] for r in applied] == [1, 2, 3, 4, 5, 6]
                assert [r["event_id"] for r in applied] == [
                    decode_envelope(b).event_id for b, _ in bodies
                ]
                assert tracking is not None
                assert tracking["position"] == 6
                state = follower.stats.partitions[0]
                assert state.duplicates >= duplicates
                assert state.gaps_filled == filled
                assert state.broken is None


async def test_two_follower_processes_apply_each_event_once(infra: Infra) -> None:
    log = LogSpec(topic_name("follow.race"), 1)
    count = 300
    async with infra.database(migrate.store_migrations()) as producer_dsn:
        bodies = await _producer_with_sealed_events(producer_dsn, log, count)
        async with log_server(producer_dsn, log) as api:
            kafka = KafkaSettings(infra.broker.bootstrap)
            await _publish(kafka, log, bodies[:150] + bodies[100:])  # overlapping duplicates
            async with infra.database([*migrate.store_migrations(), APPLIED]) as consumer_dsn:
                followers = [
                    await python_module(
                        "tests.support.follow",
                        consumer_dsn,
                        log.name,
                        "1",
                        infra.broker.bootstrap,
                        api,
                        TOKEN,
                        str(count),
                    )
                    for _ in range(2)
                ]
                results = await asyncio.gather(*(finish(p, 90) for p in followers))
                assert [code for code, _ in results] == [0, 0], results
                conn = await asyncpg.connect(consumer_dsn)
                try:
                    positions = [
                        r["position"]
                        for r in await conn.fetch(
                            "SELECT position FROM applied ORDER BY applied_at"
                        )
                    ]
                finally:
                    await conn.close()
                assert positions == list(range(1, count + 1))


async def test_a_forgery_with_a_matching_hash_is_never_applied(infra: Infra) -> None:
    """Whoever can write to the topic can recompute an unkeyed hash. No signature covers
    the forgery, so the producer's own record takes its place and the forgery is
    reported; everything after it is applied, and the partition goes on."""
    log = LogSpec(topic_name("follow.forged"), 1)
    async with infra.database(migrate.store_migrations()) as producer_dsn:
        bodies = await _producer_with_sealed_events(producer_dsn, log, 6)
        async with log_server(producer_dsn, log) as api:
            forged = [bodies[0], bodies[1], _edited(bodies[2], rehash=True), *bodies[3:]]
            await _publish(KafkaSettings(infra.broker.bootstrap), log, forged)
            async with _following(infra, log, api) as (follower, pool):
                await _wait_position(follower, 6)
                state = follower.stats.partitions[0]
                assert state.broken is None and state.rejected == 1 and state.gaps_filled == 1
                async with pool.acquire() as conn:
                    applied = [
                        r["event_id"]
                        for r in await conn.fetch("SELECT event_id FROM applied ORDER BY position")
                    ]
                assert applied == [decode_envelope(b).event_id for b, _ in bodies]


async def test_a_forged_next_event_waits_for_the_producers_and_is_reported(infra: Infra) -> None:
    """A forgery at head + 1 (an `ApiKeyCreated` nobody created, in the attack this
    guards against) comes before the producer's own record of that position: it is held,
    never applied, and reported once the producer's signed batch arrives; the producer's
    record is applied, not skipped as a duplicate."""
    log = LogSpec(topic_name("follow.next"), 1)
    async with infra.database(migrate.store_migrations()) as producer_dsn:
        bodies = await _producer_with_sealed_events(producer_dsn, log, 4)
        async with log_server(producer_dsn, log) as api:
            kafka = KafkaSettings(infra.broker.bootstrap)
            await _publish(kafka, log, bodies[:2])
            async with _following(infra, log, api) as (follower, pool):
                await _wait_position(follower, 2)
                await _publish(kafka, log, [_edited(bodies[2], rehash=True)], sign=False)
                await _publish(kafka, log, bodies[2:])
                await _wait_position(follower, 4)
                state = follower.stats.partitions[0]
                assert state.rejected == 1 and state.broken is None
                async with pool.acquire() as conn:
                    applied = [
                        r["event_id"]
                        for r in await conn.fetch("SELECT event_id FROM applied ORDER BY position")
                    ]
                assert applied == [decode_envelope(b).event_id for b, _ in bodies]


async def test_an_unsigned_record_past_the_producers_head_is_never_applied(infra: Infra) -> None:
    """No signature ever comes for it: after the follower's patience the producer's log
    says it has no such position, and the record is reported, not applied."""
    log = LogSpec(topic_name("follow.beyond"), 1)
    async with infra.database(migrate.store_migrations()) as producer_dsn:
        bodies = await _producer_with_sealed_events(producer_dsn, log, 3)
        async with log_server(producer_dsn, log) as api:
            kafka = KafkaSettings(infra.broker.bootstrap)
            await _publish(kafka, log, bodies)
            async with _following(infra, log, api) as (follower, pool):
                await _wait_position(follower, 3)
                envelope = decode_envelope(bodies[2][0])
                data = msgspec.json.decode(bytes(envelope.data))
                data["name"] = "an extra group"
                extra = msgspec.structs.replace(
                    envelope,
                    position=4,
                    prev_hash=bodies[2][1].hex(),
                    data=msgspec.Raw(msgspec.json.encode(data, order="sorted")),
                )
                body = canonical_bytes(extra)
                await _publish(kafka, log, [(body, link(bodies[2][1], body))], sign=False)
                state = follower.stats.partitions[0]
                async with asyncio.timeout(30):
                    while state.rejected == 0:
                        await asyncio.sleep(0.02)
                assert state.position == 3 and state.broken is None
                async with pool.acquire() as conn:
                    assert await conn.fetchval("SELECT max(position) FROM applied") == 3
