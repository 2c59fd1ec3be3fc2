"""The redeemer's own state, rebuilt from its own log: what `audit replay` checks.

The live redeemer writes these rows in the transaction that decides (../application/,
../background/sweeper.py) and records the decision as an event. Applied in
log order after the issuer's log, the events below give back the same rows: the counters
(seats reserved and taken, verified joins, scans used, scans per local day), the
memberships, the join requests and the scan facts. What is not in the log is not rebuilt:
join tokens (a token is a secret; `reserved` counts the live ones), spent tokens, wrong
verification answers, rate limits and a live code's round-robin turn.

Personal values come back if their person key is still there (`reveal`); memberships of
people whose keys are gone take the name `erased:{person}`, as erasure gives them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from services.redeemer.application import seats
from services.redeemer.domain.people import erased
from shared.dbtypes import Conn
from shared.events import Envelope, Event
from shared.events.personal import Sealed
from shared.events.redeemer import (
    JoinRequestApproved,
    JoinRequestDeclined,
    JoinRequested,
    JoinTokenExpired,
    JoinTokenRedeemed,
    MemberJoined,
    MemberLeft,
    ScanAccepted,
    ScanFoundMember,
    ScanRejected,
)

# (sealed value, field) -> the value, or None when its key is gone
Reveal = Callable[[Sealed, str], str | None]
Apply = Callable[[Conn, Any, Envelope], Awaitable[None]]

_FACT = """
INSERT INTO scan_facts (scan_id, tenant_id, code_id, live_code_id, group_id, channel, outcome,
                        reason, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""
_DAILY = """
INSERT INTO code_daily_scans (code_id, day, scans) VALUES ($1, $2, 1)
ON CONFLICT (code_id, day) DO UPDATE SET scans = code_daily_scans.scans + 1
"""


class DecisionProjection:
    def __init__(self, reveal: Reveal) -> None:
        self.reveal = reveal
        self._apply: dict[type, Apply] = {
            ScanAccepted: self._accepted,
            ScanFoundMember: self._found_member,
            ScanRejected: self._rejected,
            JoinRequested: self._requested,
            JoinRequestApproved: self._approved,
            JoinRequestDeclined: self._declined,
            JoinTokenRedeemed: self._redeemed,
            JoinTokenExpired: self._expired,
            MemberJoined: self._joined,
            MemberLeft: self._left,
        }

    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        apply = self._apply.get(type(event))
        if apply is not None:
            await apply(conn, event, envelope)

    def _user(self, user: Sealed, person: str) -> str:
        return self.reveal(user, "user") or erased(person)

    async def _counted(self, conn: Conn, code_id: Any, day: Any, capped: bool) -> None:
        if code_id is not None:
            await conn.execute(
                "UPDATE codes SET scans_used = scans_used + 1 WHERE code_id = $1", code_id
            )
            if capped and day is not None:
                await conn.execute(_DAILY, code_id, day)

    async def _fact(
        self, conn: Conn, e: Any, env: Envelope, outcome: str, reason: str | None = None
    ) -> None:
        await conn.execute(
            _FACT,
            e.scan_id,
            env.tenant_id,
            e.code_id,
            e.live_code_id,
            e.group_id,
            e.channel,
            outcome,
            reason,
            env.occurred_at,
        )

    async def _accepted(self, conn: Conn, e: ScanAccepted, env: Envelope) -> None:
        await self._counted(conn, e.code_id, e.day, e.daily_capped)
        if e.replaces_scan_id is None:
            await seats.reserved(conn, e.group_id, +1)
        await self._fact(conn, e, env, "accepted")

    async def _found_member(self, conn: Conn, e: ScanFoundMember, env: Envelope) -> None:
        await self._fact(conn, e, env, "member")

    async def _rejected(self, conn: Conn, e: ScanRejected, env: Envelope) -> None:
        await self._fact(conn, e, env, "rejected", e.reason)

    async def _requested(self, conn: Conn, e: JoinRequested, env: Envelope) -> None:
        await self._counted(conn, e.code_id, e.day, e.daily_capped)
        await conn.execute(
            "INSERT INTO join_requests (request_id, scan_id, tenant_id, group_id, code_id, "
            "live_code_id, user_id, mode, real_name, display_name, created_at, person) "
            "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
            e.request_id,
            e.scan_id,
            env.tenant_id,
            e.group_id,
            e.code_id,
            e.live_code_id,
            self._user(e.user, e.person),
            e.mode,
            self.reveal(e.real_name, "real_name") if e.real_name else None,
            self.reveal(e.display_name, "display_name") if e.display_name else None,
            env.occurred_at,
            e.person,
        )
        await self._fact(conn, e, env, "requested")

    async def _decided(
        self, conn: Conn, e: Any, env: Envelope, status: str, reason: str | None
    ) -> None:
        await conn.execute(
            "UPDATE join_requests SET status = $2, decided_at = $3, decided_by = $4, "
            "decline_reason = $5 WHERE request_id = $1",
            e.request_id,
            status,
            env.occurred_at,
            e.decided_by,
            reason,
        )

    async def _approved(self, conn: Conn, e: JoinRequestApproved, env: Envelope) -> None:
        await self._decided(conn, e, env, "approved", None)
        await conn.execute(
            "UPDATE scan_facts f SET joined_at = $2 FROM join_requests r "
            "WHERE r.request_id = $1 AND f.scan_id = r.scan_id",
            e.request_id,
            env.occurred_at,
        )

    async def _declined(self, conn: Conn, e: JoinRequestDeclined, env: Envelope) -> None:
        await self._decided(conn, e, env, "declined", e.reason)

    async def _redeemed(self, conn: Conn, e: JoinTokenRedeemed, env: Envelope) -> None:
        await seats.reserved(conn, e.group_id, -1)
        await conn.execute(
            "UPDATE scan_facts SET joined_at = $2 WHERE scan_id = $1", e.scan_id, env.occurred_at
        )

    async def _expired(self, conn: Conn, e: JoinTokenExpired, env: Envelope) -> None:
        await seats.reserved(conn, e.group_id, -1)

    async def _joined(self, conn: Conn, e: MemberJoined, env: Envelope) -> None:
        await conn.execute(
            "INSERT INTO memberships (group_id, user_id, joined_at, code_id, scan_id, "
            "verification, person) VALUES ($1, $2, $3, $4, $5, $6, $7)",
            e.group_id,
            self._user(e.user, e.person),
            env.occurred_at,
            e.code_id,
            e.scan_id,
            e.verification,
            e.person,
        )
        # The token's reservation went with JoinTokenRedeemed: this is the member only.
        await seats.joined(conn, e.group_id, mode=e.verification, created=True, seat_reserved=False)

    async def _left(self, conn: Conn, e: MemberLeft, env: Envelope) -> None:
        await conn.execute(
            "DELETE FROM memberships WHERE group_id = $1 AND person = $2", e.group_id, e.person
        )
        await seats.left(conn, e.group_id, mode=e.verification)
