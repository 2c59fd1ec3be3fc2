"""What the issuer learns from the redeemer's log: live counters, and auto_create.

Applied by the issuer's follower inside the transaction that also moves its tracking row,
so each redeemer event counts once. Opening the next group of a full live code happens in
that same transaction: the reaction is exactly once, like the counting.
"""

from __future__ import annotations

from services.issuer.handlers.live_codes import open_next_group
from shared.clock import Clock
from shared.dbtypes import Conn
from shared.events import Envelope, Event
from shared.events.redeemer import MemberJoined, MemberLeft, ScanAccepted, ScanRejected
from shared.store.eventstore import LogSpec
from shared.store.unit_of_work import Projector, UnitOfWork


class RedeemerCounters:
    def __init__(self, log: LogSpec, clock: Clock, projector: Projector, wake: object) -> None:
        self.log = log
        self.clock = clock
        self.projector = projector
        self.wake = wake

    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        if isinstance(event, ScanAccepted):
            await self._accepted(conn, envelope, event)
        elif isinstance(event, ScanRejected):
            await self._rejected(conn, event)
        elif isinstance(event, MemberJoined):
            await conn.execute(
                "UPDATE groups SET members = members + 1, "
                "verified_joins = verified_joins + $2 WHERE group_id = $1",
                event.group_id,
                0 if event.verification == "none" else 1,
            )
            if event.code_id:
                await conn.execute(
                    "UPDATE codes SET joins = joins + 1 WHERE code_id = $1", event.code_id
                )
            if event.live_code_id:
                await conn.execute(
                    "UPDATE live_codes SET joins = joins + 1 WHERE live_code_id = $1",
                    event.live_code_id,
                )
        elif isinstance(event, MemberLeft):
            await conn.execute(
                "UPDATE groups SET members = greatest(members - 1, 0), "
                "verified_joins = greatest(verified_joins - $2, 0) WHERE group_id = $1",
                event.group_id,
                0 if event.verification == "none" else 1,
            )

    async def _accepted(self, conn: Conn, envelope: Envelope, event: ScanAccepted) -> None:
        if event.code_id:
            await conn.execute(
                "UPDATE codes SET scans_used = scans_used + 1, last_scan_at = $2 "
                "WHERE code_id = $1",
                event.code_id,
                envelope.occurred_at,
            )
            if event.day is not None:
                await conn.execute(
                    "INSERT INTO code_daily_scans (code_id, day, scans) VALUES ($1, $2, 1) "
                    "ON CONFLICT (code_id, day) DO UPDATE SET scans = code_daily_scans.scans + 1",
                    event.code_id,
                    event.day,
                )
        if event.live_code_id:
            await conn.execute(
                "UPDATE live_codes SET scans_used = scans_used + 1 WHERE live_code_id = $1",
                event.live_code_id,
            )

    async def _rejected(self, conn: Conn, event: ScanRejected) -> None:
        if event.code_id:
            await conn.execute(
                "UPDATE codes SET scans_rejected = scans_rejected + 1 WHERE code_id = $1",
                event.code_id,
            )
        if event.live_code_id:
            await conn.execute(
                "UPDATE live_codes SET scans_rejected = scans_rejected + 1 WHERE live_code_id = $1",
                event.live_code_id,
            )
            if event.reason == "group_full" and event.groups_seen:
                uow = UnitOfWork(conn, self.clock(), self.log, self.projector)
                if await open_next_group(uow, event.live_code_id, event.groups_seen):
                    await uow.flush()
                    if callable(self.wake):
                        self.wake()
