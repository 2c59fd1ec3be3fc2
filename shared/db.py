"""Connection pools and start-up migration of a service's database."""

from __future__ import annotations

import asyncio
import logging
import re

import asyncpg

from shared.store import migrate

log = logging.getLogger(__name__)


def mask_dsn(dsn: str) -> str:
    """The DSN with its password replaced, for logs."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", dsn)


async def connect_retrying(dsn: str, timeout: float = 30.0) -> asyncpg.Connection:
    """A connection, waiting for a server that is still starting."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            return await asyncpg.connect(dsn)
        except (OSError, asyncpg.CannotConnectNowError, asyncpg.TooManyConnectionsError) as exc:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"PostgreSQL at {mask_dsn(dsn)} did not answer: {exc}") from exc
            await asyncio.sleep(0.2)


async def migrate_database(dsn: str, migrations: list[migrate.Migration]) -> None:
    conn = await connect_retrying(dsn)
    try:
        await migrate.apply(conn, migrations)
    finally:
        await conn.close()


class PooledConnection(asyncpg.Connection):
    """A pooled connection released without asyncpg's reset query.

    asyncpg resets every connection it takes back (RESET ALL, UNLISTEN *, unlock advisory
    locks…): one more round trip for each acquire. Our pooled connections keep no session
    state (advisory locks are taken only on dedicated connections, never pooled ones), so
    there is nothing to reset; an open transaction is still rolled back by the pool."""

    def get_reset_query(self) -> str:
        return ""


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        connection_class=PooledConnection,
    )
    assert pool is not None
    return pool
