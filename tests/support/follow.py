"""Follower harness: a projection that records every event it is given, and a process entry.

    python -m tests.support.follow CONSUMER_DSN LOG PARTITIONS BOOTSTRAP LOG_API TOKEN TARGET

runs a Follower until the tracking rows sum to TARGET positions, then exits 0.
"""

from __future__ import annotations

import asyncio
import sys

import aiohttp
import asyncpg

from shared.dbtypes import Conn
from shared.events import Envelope, Event
from shared.kafka import KafkaSettings
from shared.store.eventstore import LogSpec
from shared.store.follower import Follower
from shared.store.log_client import LogClient
from shared.store.migrate import Migration

# The primary key makes a second application of any event fail loudly.
APPLIED = Migration(
    "test",
    1,
    "applied",
    """
CREATE TABLE applied (
    partition integer NOT NULL,
    position  bigint  NOT NULL,
    event_id  uuid    NOT NULL UNIQUE,
    applied_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (partition, position)
);""",
)


class RecordingProjection:
    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        await conn.execute(
            "INSERT INTO applied (partition, position, event_id) VALUES ($1, $2, $3)",
            envelope.partition,
            envelope.position,
            envelope.event_id,
        )


async def applied_total(pool: asyncpg.Pool, log: str) -> int:
    async with pool.acquire() as conn:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(position), 0) FROM tracking WHERE log = $1", log
            )
        )


async def main() -> int:
    dsn, log_name, partitions, bootstrap, api, token, target = sys.argv[1:8]
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=4)
    assert pool is not None
    log = LogSpec(log_name, int(partitions))
    async with aiohttp.ClientSession() as session:
        follower = Follower(
            pool,
            log,
            KafkaSettings(bootstrap),
            RecordingProjection(),
            LogClient(api, token, session),
            name="race",
        )
        task = asyncio.create_task(follower.run())
        try:
            async with asyncio.timeout(60):
                while await applied_total(pool, log_name) < int(target):
                    await asyncio.sleep(0.05)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    await pool.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
