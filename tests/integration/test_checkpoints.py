"""Checkpoints sealed by the relay under concurrent writers, on the real database and broker,
and checked by the auditor's own replay: every hash, every tree head, every signature."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest

from shared.audit.merkle import Frontier, leaf_hash, verify_consistency, verify_inclusion
from shared.audit.run import KafkaSource, VerifyOptions, verify
from shared.crypto.kek import Kek
from shared.kafka import KafkaSettings
from shared.store import migrate
from shared.store.eventstore import LogSpec
from shared.store.log_setup import ensure_log
from shared.store.proofs import consistency_path, inclusion_path, latest_checkpoint
from shared.store.relay import Checkpoints, Relay
from shared.store.sealing import CheckpointPolicy
from tests.support.infra import Infra, topic_name
from tests.support.logcheck import wait_published
from tests.support.processes import finish, python_module

WRITER = "tests.support.writer"


async def _pins(dsn: str, log: str) -> dict[str, dict[str, str]]:
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT key_id, public_key FROM log_keys")
    finally:
        await conn.close()
    return {log: {r["key_id"]: r["public_key"] for r in rows}}


async def _count(dsn: str, sql: str) -> int:
    conn = await asyncpg.connect(dsn)
    try:
        return int(await conn.fetchval(sql))
    finally:
        await conn.close()


async def _run_writers(dsn: str, log: LogSpec, writers: int, per_writer: int, tag: str) -> None:
    procs = [
        await python_module(
            WRITER, dsn, log.name, str(log.partitions), f"{tag}{i}", "--events", str(per_writer)
        )
        for i in range(writers)
    ]
    codes = [code for code, _ in await asyncio.gather(*(finish(p) for p in procs))]
    assert codes == [0] * writers


async def test_checkpoints_under_concurrent_writers_verify_with_the_auditor(infra: Infra) -> None:
    """24 writer processes append while two relays (one leads, one waits) seal a signed
    checkpoint every 7 events; the auditor then replays the topic: nothing is wrong."""
    async with infra.database(migrate.store_migrations()) as dsn:
        log = LogSpec(topic_name("race.checkpoints"), 4)
        conn = await asyncpg.connect(dsn)
        try:
            await ensure_log(conn, log)
        finally:
            await conn.close()
        kafka = KafkaSettings(infra.broker.bootstrap)
        checkpoints = Checkpoints(CheckpointPolicy(every=7, seconds=0.2), Kek(bytes(32)), "test")
        relays = [
            Relay(dsn, log, kafka, idle_wait=0.005, checkpoints=checkpoints) for _ in range(2)
        ]
        tasks = [asyncio.create_task(r.run()) for r in relays]
        try:
            await _run_writers(dsn, log, 24, 6, "w")
            async with asyncio.timeout(30):
                while await _count(
                    dsn,
                    "SELECT count(*) FROM log_partitions WHERE sealed_position > 0 "
                    "AND checkpoint_position < sealed_position",
                ):
                    await asyncio.sleep(0.05)
            total = await _count(dsn, "SELECT count(*) FROM events")
            await wait_published(dsn, total)
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with pytest.raises(asyncio.CancelledError):
                    await task
        assert sum(r.stats.leader for r in relays) == 0  # both let go when cancelled
        report = await verify(
            KafkaSource(kafka, {log.name: log.partitions}),
            VerifyOptions(pins=await _pins(dsn, log.name), checkpoint_seconds=0.2, grace=5),
        )
        assert report.ok, report.findings
        assert report.events == total
        made = sum(p.checkpoints for p in report.partitions)
        assert made == await _count(
            dsn, "SELECT count(*) FROM events WHERE type = 'CheckpointSealed'"
        )
        assert made >= 24 * 6 // 8  # at least one for every 7 events, and the tails


async def test_a_log_sealed_before_trees_were_kept_gets_its_tree_before_anything_new(
    infra: Infra,
) -> None:
    """A store sealed by a relay that kept no tree (migration 0004 on an existing log):
    the next leader builds the tree from the chain first, so the first checkpoint and
    every proof agree with an auditor's replay from position 1."""
    async with infra.database(migrate.store_migrations()) as dsn:
        log = LogSpec(topic_name("upgrade.trees"), 2)
        conn = await asyncpg.connect(dsn)
        try:
            await ensure_log(conn, log)
        finally:
            await conn.close()
        kafka = KafkaSettings(infra.broker.bootstrap)
        plain = Relay(dsn, log, kafka, idle_wait=0.005)
        task = asyncio.create_task(plain.run())
        await _run_writers(dsn, log, 6, 5, "old")
        await wait_published(dsn, 30)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        conn = await asyncpg.connect(dsn)
        try:
            # As the database was before migration 0004: no tree at all.
            await conn.execute("DELETE FROM merkle_nodes")
            await conn.execute("UPDATE log_partitions SET tree_size = 0, frontier = '{}'")
        finally:
            await conn.close()
        signing = Relay(
            dsn,
            log,
            kafka,
            idle_wait=0.005,
            checkpoints=Checkpoints(CheckpointPolicy(every=4, seconds=0.1), Kek(bytes(32)), "t"),
        )
        task = asyncio.create_task(signing.run())
        try:
            await _run_writers(dsn, log, 3, 4, "new")
            async with asyncio.timeout(30):
                while await _count(
                    dsn,
                    "SELECT count(*) FROM log_partitions "
                    "WHERE checkpoint_position < sealed_position",
                ):
                    await asyncio.sleep(0.05)
            await wait_published(dsn, await _count(dsn, "SELECT count(*) FROM events"))
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        report = await verify(
            KafkaSource(kafka, {log.name: log.partitions}),
            VerifyOptions(
                pins=await _pins(dsn, log.name),
                checkpoint_seconds=0.1,
                grace=5,
                now=datetime.now(UTC) + timedelta(seconds=1),
            ),
        )
        assert report.ok, report.findings
        conn = await asyncpg.connect(dsn)
        try:
            for partition in range(log.partitions):
                cp = await latest_checkpoint(conn, partition)
                assert cp is not None
                size, root = cp.event.tree_size, bytes.fromhex(cp.event.tree_root)
                hashes = [
                    bytes(r["hash"])
                    for r in await conn.fetch(
                        "SELECT hash FROM events WHERE partition = $1 AND position <= $2 "
                        "ORDER BY position",
                        partition,
                        size,
                    )
                ]
                # Every event's proof, from stored nodes and rebuilt small subtrees alike.
                for index, chain_hash in enumerate(hashes):
                    path = await inclusion_path(conn, partition, index, size)
                    assert verify_inclusion(index, size, leaf_hash(chain_hash), path, root)
                # And the tree of every earlier size is a prefix of this one.
                for first in range(1, size):
                    earlier = Frontier()
                    for chain_hash in hashes[:first]:
                        earlier.append(leaf_hash(chain_hash))
                    proof = await consistency_path(conn, partition, first, size)
                    assert verify_consistency(first, size, earlier.root(), root, proof)
        finally:
            await conn.close()
