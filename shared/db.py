"""Connection pools and start-up migration of a service's database.

A service's pool is a `RequestPool`: inside `request_transaction()` every `acquire()` of
the request's task yields that one transaction's connection (each acquire a savepoint, so
a statement that fails rolls back only its own part), so everything a request writes, and
whatever is stored about it, commits together or not at all. Outside it the pool is plain.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy
from asyncpg.transaction import Transaction

from shared.store import migrate

log = logging.getLogger(__name__)


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` says the database cannot be reached now (down, restarting, refusing
    connections, or a connection lost mid-request), rather than that a request is wrong."""
    if isinstance(
        exc,
        OSError
        | asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.TooManyConnectionsError
        | asyncpg.exceptions.InternalClientError,
    ):
        return True
    # A connection the server closed under us (asyncpg names no subclass for it).
    return isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc)


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


async def migrate_database(
    dsn: str, migrations: list[migrate.Migration], functions: list[migrate.Function] | None = None
) -> None:
    conn = await connect_retrying(dsn)
    try:
        await migrate.apply(conn, migrations, functions)
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


@dataclass
class Ambient:
    """The transaction a request runs in, and what waits for its commit."""

    conn: PoolConnectionProxy[asyncpg.Record]
    after_commit: list[Callable[[], None]] = field(default_factory=list)


_AMBIENT: ContextVar[Ambient | None] = ContextVar("qunma_request_transaction", default=None)


def in_request_transaction() -> bool:
    """Whether this task's writes belong to an open request transaction."""
    return _AMBIENT.get() is not None


def after_commit(callback: Callable[[], None]) -> None:
    """Call `callback` once what was just written is committed: now, or when the request
    transaction it belongs to commits (never, if that rolls back)."""
    ambient = _AMBIENT.get()
    if ambient is None:
        callback()
    else:
        ambient.after_commit.append(callback)


class _Savepoint(PoolAcquireContext):
    """`acquire()` inside a request transaction: its connection, within a savepoint."""

    __slots__ = ("ambient", "savepoint")

    def __init__(self, pool: RequestPool, timeout: float | None, ambient: Ambient) -> None:
        super().__init__(pool, timeout)
        self.ambient = ambient
        self.savepoint: Transaction | None = None

    async def __aenter__(self) -> PoolConnectionProxy[asyncpg.Record]:
        self.savepoint = self.ambient.conn.transaction()
        await self.savepoint.start()
        return self.ambient.conn

    async def __aexit__(self, *exc: object) -> None:
        assert self.savepoint is not None
        if exc[0] is None:
            await self.savepoint.commit()
        else:
            await self.savepoint.rollback()


class RequestPool(asyncpg.Pool):
    def acquire(self, *, timeout: float | None = None) -> PoolAcquireContext:
        ambient = _AMBIENT.get()
        if ambient is None:
            return super().acquire(timeout=timeout)
        return _Savepoint(self, timeout, ambient)

    def own(self, *, timeout: float | None = None) -> PoolAcquireContext:
        """A connection of its own, never the request's (for what must outlive a rollback:
        rate-limit counts, the request transaction itself)."""
        return super().acquire(timeout=timeout)

    @asynccontextmanager
    async def request_transaction(self) -> AsyncIterator[Ambient]:
        """One transaction for the rest of this task: commits if the block ends normally,
        rolls back if it raises. Not for tasks that share a connection concurrently."""
        if _AMBIENT.get() is not None:
            raise RuntimeError("a request transaction is already open in this task")
        async with self.own() as conn:
            ambient = Ambient(conn)
            async with conn.transaction():
                token = _AMBIENT.set(ambient)
                try:
                    yield ambient
                finally:
                    _AMBIENT.reset(token)
        for callback in ambient.after_commit:
            callback()


async def create_pool(dsn: str, *, min_size: int = 2, max_size: int = 20) -> RequestPool:
    pool = RequestPool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        command_timeout=60,
        connection_class=PooledConnection,
        record_class=asyncpg.Record,
        init_size=None,
        max_queries=50_000,
        max_inactive_connection_lifetime=300.0,
        loop=None,
        connect=None,
        setup=None,
        init=None,
        reset=None,
    )
    await pool
    return pool
