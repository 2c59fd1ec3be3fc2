"""The hot path's combiner: the accepted scans of one code that arrive together are decided
in one transaction (`qunma_accept_scans`, ../sql/accept_scans.sql).

Every accepted scan of a code counts on the code's row and reserves on its group's row, and
a transaction holds those row locks across its commit; one transaction per scan therefore
cannot pass about one scan per commit latency, however many cores there are. Here, per code
and per replica, one batch is in the database at a time; the scans that arrive meanwhile
wait in memory and go together in the next batch, so the rows are locked and the commit
paid once per batch. A code scanned alone goes at once, in a batch of one: nothing waits
for company.

Each scan in a batch is its own subtransaction, decided in arrival order exactly as it
would be alone, so caps stay exact and a refusal leaves nothing of that scan.
"""

from __future__ import annotations

import asyncio
import contextvars
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

ACCEPT_MANY = "SELECT * FROM qunma_accept_scans(p_scans => $1::qunma_scan[])"

# Well under the 64 subtransactions a transaction may have before every backend's snapshot
# overflows to pg_subtrans; large enough that a batch amortises its commit.
MAX_BATCH = 32


@dataclass
class _Queue:
    waiting: list[tuple[tuple[Any, ...], asyncio.Future[asyncpg.Record]]] = field(
        default_factory=list
    )
    running: bool = False


def _seen(future: asyncio.Future[asyncpg.Record]) -> None:
    # A caller that went away never reads its batch's failure; marking it read keeps asyncio
    # from reporting "Future exception was never retrieved" (a caller still waiting gets it).
    if not future.cancelled():
        future.exception()


class Combiner:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        on_commit: Callable[[], None] | None = None,
        max_batch: int = MAX_BATCH,
    ) -> None:
        self.pool = pool
        self.on_commit = on_commit
        self.max_batch = max_batch
        self._queues: dict[uuid.UUID, _Queue] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self.batches = 0  # batches sent, and the scans in them (the tests read them)
        self.scans = 0

    async def accept(self, key: uuid.UUID, scan: tuple[Any, ...]) -> asyncpg.Record:
        """One scan's row of `qunma_accept_scans`: `refused` (its SQLSTATE) or its group.
        `key` is what the scan contends on: its code, or a live code's group."""
        future: asyncio.Future[asyncpg.Record] = asyncio.get_running_loop().create_future()
        future.add_done_callback(_seen)
        queue = self._queues.setdefault(key, _Queue())
        queue.waiting.append((scan, future))
        if not queue.running:
            queue.running = True
            # A context of its own: the batch belongs to no caller's request.
            task = asyncio.create_task(self._drain(key, queue), context=contextvars.Context())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        # A caller that goes away does not cancel a batch that others wait on: its scan,
        # once sent, is decided (its token then expires unused, as an unread answer's does).
        return await asyncio.shield(future)

    async def _drain(self, key: uuid.UUID, queue: _Queue) -> None:
        try:
            while queue.waiting:
                batch = queue.waiting[: self.max_batch]
                del queue.waiting[: self.max_batch]
                await self._send(batch)
        finally:
            queue.running = False
            if not queue.waiting and self._queues.get(key) is queue:
                del self._queues[key]

    async def _send(
        self, batch: list[tuple[tuple[Any, ...], asyncio.Future[asyncpg.Record]]]
    ) -> None:
        try:
            async with self.pool.acquire() as conn:
                rows = await conn.fetch(ACCEPT_MANY, [scan for scan, _ in batch])
        except BaseException as exc:
            # The batch's transaction did not commit: none of its scans happened.
            for _, future in batch:
                if future.done():
                    continue
                if isinstance(exc, Exception):
                    future.set_exception(exc)
                else:
                    future.cancel()
            if not isinstance(exc, Exception):
                raise
            return
        self.batches += 1
        self.scans += len(batch)
        if self.on_commit is not None:
            self.on_commit()
        for row in rows:
            future = batch[row["i"] - 1][1]
            if not future.done():
                future.set_result(row)

    async def close(self) -> None:
        """Wait for the batches in the database (at shutdown, before the pool closes)."""
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
