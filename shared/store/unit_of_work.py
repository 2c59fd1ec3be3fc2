"""One transaction that changes state rows and records the events that explain the change."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime
from typing import TypeVar

import asyncpg

from shared.clock import Clock, utcnow
from shared.db import after_commit
from shared.dbtypes import Conn
from shared.events import Event
from shared.events.recorded import Recorded
from shared.store.eventstore import ConcurrencyConflict, LogSpec, Pending, append

T = TypeVar("T")

# Keeps a service's state rows in step with each event, inside the unit's transaction.
Projector = Callable[[Conn, Pending, datetime], Awaitable[None]]


class UnitOfWork:
    def __init__(
        self, conn: Conn, now: datetime, log: LogSpec, projector: Projector | None
    ) -> None:
        self.conn = conn
        self.now = now
        self.appended = 0
        self._log = log
        self._projector = projector
        self._pending: list[Pending] = []

    def record(
        self,
        event: Event,
        *,
        stream_id: str,
        version: int,
        tenant_id: uuid.UUID | None,
        key: str,
    ) -> Recorded:
        """Record `event` as version `version` of `stream_id`; returns it for the fold."""
        self._pending.append(Pending(event, stream_id, version, tenant_id, key))
        return Recorded(version, event, tenant_id, self.now)

    async def flush(self) -> None:
        """Write what is recorded so far (state rows, then events) without committing."""
        pending, self._pending = self._pending, []
        if self._projector is not None:
            for item in pending:
                await self._projector(self.conn, item, self.now)
        await append(self.conn, self._log, pending, self.now)
        self.appended += len(pending)


class Outbox:
    """Opens units of work on a pool and tells the relay in this process when one commits."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        log: LogSpec,
        clock: Clock = utcnow,
        on_commit: Callable[[], None] | None = None,
        projector: Projector | None = None,
    ) -> None:
        self.pool = pool
        self.log = log
        self.clock = clock
        self.on_commit = on_commit
        self.projector = projector

    @asynccontextmanager
    async def unit(self) -> AsyncIterator[UnitOfWork]:
        async with self.pool.acquire() as conn, conn.transaction():
            uow = UnitOfWork(conn, self.clock(), self.log, self.projector)
            yield uow
            await uow.flush()
        if uow.appended and self.on_commit is not None:
            after_commit(self.on_commit)  # inside a request transaction: when it commits

    async def run(self, decide: Callable[[UnitOfWork], Awaitable[T]], *, attempts: int = 5) -> T:
        """Run `decide` in a unit of work, again from a fresh read if a stream moved under it
        or PostgreSQL rolled the transaction back to break a deadlock (a handler and the
        follower that projects the other service's events can update the same rows in
        different orders: superseding a code while its join counters move)."""
        for attempt in range(attempts):
            try:
                async with self.unit() as uow:
                    return await decide(uow)
            except (ConcurrencyConflict, asyncpg.exceptions.TransactionRollbackError):
                if attempt == attempts - 1:
                    raise
                await asyncio.sleep(0.005 * (attempt + 1))
        raise AssertionError("unreachable")
