"""What the issuer learns from the redeemer's log: live counters.

Applied by the issuer's follower inside the transaction that also moves its tracking row,
so each redeemer event counts once. Counters are summed over a batch and written once per
table (a busy code gets one UPDATE a batch, not one a scan). What the issuer does on
hearing the redeemer (auto_create) is a reaction of its own (reactions.py).
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, datetime

from shared.dbtypes import Conn
from shared.events import Envelope, Event
from shared.events.redeemer import (
    JoinRequested,
    MemberJoined,
    MemberLeft,
    ScanAccepted,
    ScanRejected,
)
from shared.rules.verification import verified


@dataclass
class _Tally:
    used: int = 0
    rejected: int = 0
    joins: int = 0
    last: datetime | None = None


class RedeemerCounters:
    def __init__(self) -> None:
        self.begin()

    def begin(self) -> None:
        self._codes: dict[uuid.UUID, _Tally] = defaultdict(_Tally)
        self._days: dict[tuple[uuid.UUID, date], int] = defaultdict(int)
        self._live: dict[uuid.UUID, _Tally] = defaultdict(_Tally)
        self._groups: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])

    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        if isinstance(event, ScanAccepted | JoinRequested):
            if event.code_id:
                tally = self._codes[event.code_id]
                tally.used += 1
                tally.last = max(filter(None, (tally.last, envelope.occurred_at)))
                if event.day is not None:
                    self._days[(event.code_id, event.day)] += 1
            if event.live_code_id:
                self._live[event.live_code_id].used += 1
        elif isinstance(event, ScanRejected):
            if event.code_id:
                self._codes[event.code_id].rejected += 1
            if event.live_code_id:
                self._live[event.live_code_id].rejected += 1
        elif isinstance(event, MemberJoined):
            self._groups[event.group_id][0] += 1
            self._groups[event.group_id][1] += verified(event.verification)
            if event.code_id:
                self._codes[event.code_id].joins += 1
            if event.live_code_id:
                self._live[event.live_code_id].joins += 1
        elif isinstance(event, MemberLeft):
            self._groups[event.group_id][0] -= 1
            self._groups[event.group_id][1] -= verified(event.verification)

    async def flush(self, conn: Conn) -> None:
        if self._codes:
            ids = list(self._codes)
            await conn.execute(
                "UPDATE codes c SET scans_used = c.scans_used + u.used, "
                "scans_rejected = c.scans_rejected + u.rejected, joins = c.joins + u.joins, "
                "last_scan_at = greatest(c.last_scan_at, u.last) "
                "FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[], $5::timestamptz[]) "
                "AS u(code_id, used, rejected, joins, last) WHERE c.code_id = u.code_id",
                ids,
                [self._codes[i].used for i in ids],
                [self._codes[i].rejected for i in ids],
                [self._codes[i].joins for i in ids],
                [self._codes[i].last for i in ids],
            )
        if self._days:
            keys = list(self._days)
            await conn.execute(
                "INSERT INTO code_daily_scans (code_id, day, scans) "
                "SELECT * FROM unnest($1::uuid[], $2::date[], $3::int[]) "
                "ON CONFLICT (code_id, day) DO UPDATE "
                "SET scans = code_daily_scans.scans + excluded.scans",
                [k[0] for k in keys],
                [k[1] for k in keys],
                [self._days[k] for k in keys],
            )
        if self._live:
            ids = list(self._live)
            await conn.execute(
                "UPDATE live_codes l SET scans_used = l.scans_used + u.used, "
                "scans_rejected = l.scans_rejected + u.rejected, joins = l.joins + u.joins "
                "FROM unnest($1::uuid[], $2::int[], $3::int[], $4::int[]) "
                "AS u(id, used, rejected, joins) WHERE l.live_code_id = u.id",
                ids,
                [self._live[i].used for i in ids],
                [self._live[i].rejected for i in ids],
                [self._live[i].joins for i in ids],
            )
        if self._groups:
            ids = list(self._groups)
            await conn.execute(
                "UPDATE groups g SET members = greatest(g.members + u.members, 0), "
                "verified_joins = greatest(g.verified_joins + u.verified, 0) "
                "FROM unnest($1::uuid[], $2::int[], $3::int[]) AS u(group_id, members, verified) "
                "WHERE g.group_id = u.group_id",
                ids,
                [self._groups[i][0] for i in ids],
                [self._groups[i][1] for i in ids],
            )
        self.begin()
