"""Frees the seats of join tokens that expired unredeemed; forgets old spent tokens.

The `DELETE` is the claim here too: a token is either redeemed or swept, never both, and
its seat is released exactly once however many replicas sweep at the same time.
"""

from __future__ import annotations

import asyncio
import logging
from collections import Counter

import asyncpg

from services.redeemer.application import seats
from shared.events.redeemer import JoinTokenExpired
from shared.store.unit_of_work import Outbox

log = logging.getLogger(__name__)

_SWEEP = """
DELETE FROM join_tokens WHERE token_hash IN (
    SELECT token_hash FROM join_tokens WHERE expires_at <= now()
    ORDER BY expires_at LIMIT $1 FOR UPDATE SKIP LOCKED)
RETURNING token_hash, scan_id, tenant_id, group_id, code_id, user_id
"""
SPENT_RETENTION = "1 day"


class Sweeper:
    def __init__(self, outbox: Outbox, *, interval: float = 1.0, batch: int = 500) -> None:
        self.outbox = outbox
        self.interval = interval
        self.batch = batch
        self.released = 0

    async def sweep(self) -> int:
        async with self.outbox.unit() as uow:
            rows = await uow.conn.fetch(_SWEEP, self.batch)
            if not rows:
                return 0
            await seats.released(uow.conn, Counter(r["group_id"] for r in rows))
            await uow.conn.executemany(
                "INSERT INTO spent_tokens (token_hash, scan_id, tenant_id, group_id, user_id, "
                "outcome) VALUES ($1, $2, $3, $4, $5, 'expired')",
                [
                    (r["token_hash"], r["scan_id"], r["tenant_id"], r["group_id"], r["user_id"])
                    for r in rows
                ],
            )
            for r in rows:
                uow.record(
                    JoinTokenExpired(
                        scan_id=r["scan_id"], group_id=r["group_id"], code_id=r["code_id"]
                    ),
                    stream_id=f"scan:{r['scan_id']}",
                    version=2,
                    tenant_id=r["tenant_id"],
                    key=str(r["group_id"]),
                )
        self.released += len(rows)
        return len(rows)

    async def forget_spent(self) -> None:
        async with self.outbox.pool.acquire() as conn:
            await conn.execute(
                f"DELETE FROM spent_tokens WHERE spent_at < now() - interval '{SPENT_RETENTION}'"
            )

    async def run(self) -> None:
        rounds = 0
        while True:
            try:
                while await self.sweep() == self.batch:
                    pass
                rounds += 1
                if rounds % 600 == 0:
                    await self.forget_spent()
            except asyncio.CancelledError:
                raise
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("sweeping expired join tokens failed: %s", exc)
            await asyncio.sleep(self.interval)
