"""Real servers for the tests: PostgreSQL and Tansu from the same wheels `qunma up` uses."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from shared.runtime.broker import EmbeddedBroker
from shared.runtime.children import free_port
from shared.runtime.postgres import EmbeddedPostgres
from shared.store import migrate


@dataclass
class Infra:
    postgres: EmbeddedPostgres
    broker: EmbeddedBroker
    root: Path

    @asynccontextmanager
    async def database(
        self, migrations: list[migrate.Migration] | None = None
    ) -> AsyncIterator[str]:
        """A new database for one test, migrated if asked; dropped afterwards."""
        name = f"t_{uuid.uuid4().hex[:12]}"
        admin = await asyncpg.connect(self.postgres.dsn())
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        finally:
            await admin.close()
        dsn = self.postgres.dsn(name)
        if migrations:
            conn = await asyncpg.connect(dsn)
            try:
                await migrate.apply(conn, migrations)
            finally:
                await conn.close()
        try:
            yield dsn
        finally:
            admin = await asyncpg.connect(self.postgres.dsn())
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            finally:
                await admin.close()


async def start_infra(root: Path) -> Infra:
    postgres = EmbeddedPostgres(root / "pg", free_port(), root / "postgres.log")
    broker = EmbeddedBroker(free_port(), root / "broker.log")
    await postgres.start()
    await broker.start()
    return Infra(postgres, broker, root)


async def waiting_on_a_lock(dsn: str, timeout: float = 30) -> None:
    """Until some session of that database waits for a lock another holds (a race's second
    party has reached the point the test needs), seen from a session of its own."""
    conn = await asyncpg.connect(dsn)
    try:
        async with asyncio.timeout(timeout):
            while not await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity "
                "WHERE datname = current_database() AND wait_event_type = 'Lock')"
            ):
                await asyncio.sleep(0.02)
    finally:
        await conn.close()


def topic_name(prefix: str) -> str:
    return f"{prefix}.{uuid.uuid4().hex[:10]}"
