"""Appending and sealing under real concurrency: separate processes, one real database."""

from __future__ import annotations

import asyncio
import random

import asyncpg
import pytest

from services.redeemer.schema import migrations
from shared.events.envelope import decode_envelope
from shared.kafka import KafkaSettings
from shared.store import migrate
from shared.store.eventstore import LogSpec
from shared.store.log_setup import ensure_log
from shared.store.relay import Relay
from shared.store.unit_of_work import Outbox, UnitOfWork
from tests.support.infra import Infra, topic_name, waiting_on_a_lock
from tests.support.logcheck import assert_chains, read_topic, sealed_rows, wait_published
from tests.support.processes import finish, python_module

WRITER = "tests.support.writer"


async def _setup(dsn: str, log: LogSpec) -> None:
    conn = await asyncpg.connect(dsn)
    try:
        await ensure_log(conn, log)
    finally:
        await conn.close()


async def test_two_writers_of_one_stream_version_exactly_one_conflicts(infra: Infra) -> None:
    async with infra.database(migrate.store_migrations()) as dsn:
        log = LogSpec("race.conflict", 2)
        await _setup(dsn, log)
        first = await python_module(
            WRITER, dsn, log.name, "2", "stream-x", "--events", "1", "--hold", stdin=True
        )
        assert first.stdout is not None
        assert first.stdin is not None
        assert (await first.stdout.readline()).strip() == b"inserted"
        # The second writer's insert waits on the unique index for the first transaction.
        second = await python_module(WRITER, dsn, log.name, "2", "stream-x", "--events", "1")
        await waiting_on_a_lock(dsn)
        first.stdin.write(b"commit\n")
        await first.stdin.drain()
        results = sorted([(await finish(first))[0], (await finish(second))[0]])
        assert results == [0, 3]
        conn = await asyncpg.connect(dsn)
        try:
            assert (
                await conn.fetchval("SELECT count(*) FROM events WHERE stream_id = 'stream-x'") == 1
            )
        finally:
            await conn.close()


async def test_late_commits_are_sealed_later_never_skipped(infra: Infra) -> None:
    """32 writer processes commit out of order while the relay runs; one holds its
    transaction open until every other one is sealed. Every event is in the log exactly once."""
    writers, per_writer = 32, 5
    total = writers * per_writer
    async with infra.database(migrate.store_migrations()) as dsn:
        log = LogSpec(topic_name("race.sealing"), 4)
        await _setup(dsn, log)
        kafka = KafkaSettings(infra.broker.bootstrap)
        relay = Relay(dsn, log, kafka, idle_wait=0.005)
        relay_task = asyncio.create_task(relay.run())
        try:
            holder = await python_module(
                WRITER,
                dsn,
                log.name,
                "4",
                "held",
                "--events",
                str(per_writer),
                "--hold",
                stdin=True,
            )
            assert holder.stdout is not None
            assert holder.stdin is not None
            assert (await holder.stdout.readline()).strip() == b"inserted"
            rng = random.Random(7)
            others = [
                await python_module(
                    WRITER,
                    dsn,
                    log.name,
                    "4",
                    f"w{i}",
                    "--events",
                    str(per_writer),
                    "--delay",
                    f"{rng.uniform(0, 0.4):.3f}",
                )
                for i in range(writers - 1)
            ]
            codes = [code for code, _ in await asyncio.gather(*(finish(p) for p in others))]
            assert codes == [0] * (writers - 1)
            await wait_published(dsn, total - per_writer)
            assert len(await sealed_rows(dsn)) == total - per_writer  # the held rows wait

            holder.stdin.write(b"commit\n")
            await holder.stdin.drain()
            assert (await finish(holder))[0] == 0
            await wait_published(dsn, total)
        finally:
            relay_task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await relay_task

        rows = await sealed_rows(dsn)
        assert len(rows) == total
        assert len({r["event_id"] for r in rows}) == total
        assert_chains(rows)
        # The held transaction took its ids first but was sealed after everyone else.
        held_seq = {r["seq"] for r in rows if decode_envelope(bytes(r["body"])).stream_id == "held"}
        assert max(held_seq) < max(r["seq"] for r in rows)
        by_position = {(r["partition"], r["position"]): r for r in rows}
        for partition in range(4):
            held = [
                r["position"] for r in rows if r["partition"] == partition and r["seq"] in held_seq
            ]
            rest = [
                r["position"]
                for r in rows
                if r["partition"] == partition and r["seq"] not in held_seq
            ]
            if held and rest:
                assert min(held) > max(rest), (
                    "a late commit is sealed after what committed before it"
                )

        published = await read_topic(kafka, log.name, 4, until=total)
        assert len(published) == total, "every event published once, no duplicates"
        for partition, value in published:
            envelope = decode_envelope(value)
            assert by_position[(partition, envelope.position)]["body"] == value


async def test_replicas_starting_at_once_migrate_an_empty_database_once(infra: Infra) -> None:
    """Six processes migrate one empty database at the same moment, as replicas of a
    service do on a first start: every one succeeds and each migration is applied once."""
    async with infra.database() as dsn:
        procs = [await python_module("tests.support.migrator", dsn, stdin=True) for _ in range(6)]
        for p in procs:
            assert p.stdout is not None
            assert (await p.stdout.readline()).strip() == b"ready"
        for p in procs:
            assert p.stdin is not None
            p.stdin.write(b"go\n")
        await asyncio.gather(*(p.stdin.drain() for p in procs if p.stdin is not None))
        results = [await finish(p) for p in procs]
        assert [code for code, _ in results] == [0] * 6, [text for _, text in results]
        conn = await asyncpg.connect(dsn)
        try:
            rows = await conn.fetch(
                "SELECT namespace, version, count(*) AS n FROM schema_migrations "
                "GROUP BY namespace, version"
            )
        finally:
            await conn.close()
        assert len(rows) == len(migrations()) and all(r["n"] == 1 for r in rows)


async def test_a_unit_of_work_picked_to_break_a_deadlock_runs_again(infra: Infra) -> None:
    """A handler and a follower updating the same two rows in opposite orders deadlock;
    PostgreSQL rolls one back. When that is the handler's unit of work, it runs again from
    a fresh read instead of failing the request."""
    async with infra.database(migrate.store_migrations()) as dsn:
        log = LogSpec("race.deadlock", 1)
        await _setup(dsn, log)
        pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
        follower = await asyncpg.connect(dsn)
        try:
            await follower.execute(
                "CREATE TABLE pair (id int PRIMARY KEY, v int NOT NULL);"
                "INSERT INTO pair VALUES (1, 0), (2, 0)"
            )
            holds_1, holds_2 = asyncio.Event(), asyncio.Event()
            attempts = 0

            async def decide(uow: UnitOfWork) -> int:
                nonlocal attempts
                attempts += 1
                # the handler notices the deadlock first, so it is the one rolled back
                await uow.conn.execute("SET LOCAL deadlock_timeout = '20ms'")
                await uow.conn.execute("UPDATE pair SET v = v + 1 WHERE id = 1")
                if attempts == 1:
                    holds_1.set()
                    await holds_2.wait()
                    await waiting_on_a_lock(dsn)  # the follower now waits for row 1
                await uow.conn.execute("UPDATE pair SET v = v + 1 WHERE id = 2")
                return attempts

            async def follow() -> None:
                await holds_1.wait()
                async with follower.transaction():
                    await follower.execute("SET LOCAL deadlock_timeout = '10s'")
                    await follower.execute("UPDATE pair SET v = v + 10 WHERE id = 2")
                    holds_2.set()
                    await follower.execute("UPDATE pair SET v = v + 10 WHERE id = 1")

            ran, _ = await asyncio.gather(Outbox(pool, log).run(decide), follow())
            assert ran == 2  # rolled back once, then done
            rows = await follower.fetch("SELECT id, v FROM pair ORDER BY id")
            assert [tuple(r) for r in rows] == [(1, 11), (2, 11)]  # both applied, once each
        finally:
            await follower.close()
            await pool.close()
