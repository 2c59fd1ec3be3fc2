"""A group's seats as the redeemer moves them: each change is one SQL function
(../sql/seats.sql), so the cap is compared in one place. A seat is reserved, or a held one
replaced, inside the scan's own call (qunma_accept_scan); here is the rest: a reserved seat
converted into a member, a free seat taken for an approved request, a member's seat
vacated, expired tokens' seats released.
"""

from __future__ import annotations

import uuid
from collections import Counter

from shared.dbtypes import Conn
from shared.rules.verification import verified

_ADJUST = (
    "SELECT qunma_seats_adjust(p_group => $1, p_members => $2, p_reserved => $3, p_verified => $4)"
)


async def joined(
    conn: Conn, group_id: uuid.UUID, *, mode: str, created: bool, seat_reserved: bool
) -> None:
    """A join: a reserved seat (a token's) becomes a member, or a free one does (an approved
    request). Joining twice takes no second seat, and a token's reservation is freed."""
    await conn.execute(
        _ADJUST,
        group_id,
        1 if created else 0,
        -1 if seat_reserved else 0,
        1 if created and verified(mode) else 0,
    )


async def left(conn: Conn, group_id: uuid.UUID, *, mode: str) -> None:
    await conn.execute(_ADJUST, group_id, -1, 0, -1 if verified(mode) else 0)


async def reserved(conn: Conn, group_id: uuid.UUID, change: int) -> None:
    """Reservations moved without a join (the replay of a scan, a token redeemed or gone)."""
    await conn.execute(_ADJUST, group_id, 0, change, 0)


async def released(conn: Conn, per_group: Counter[uuid.UUID]) -> None:
    """Expired tokens' seats, back in one statement, in one lock order for every sweeper."""
    groups = sorted(per_group)
    await conn.execute(
        "SELECT qunma_seats_release(p_groups => $1, p_counts => $2)",
        groups,
        [per_group[g] for g in groups],
    )


async def take_free(conn: Conn, group_id: uuid.UUID) -> bool:
    """Whether a seat is free for an approved request; the group stays locked until the
    caller commits, so the seat is still free when the member joins in the same transaction."""
    return bool(await conn.fetchval("SELECT qunma_seat_free(p_group => $1)", group_id))
