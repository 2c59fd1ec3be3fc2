"""Scanning a live code (活码): route the person to one of its groups.

The domain orders the candidates (domain/routing.py); each is then tried with the same
call as a code's token (tokens.py), whose conditional reservation caps the group at
`least(max_members, switch_at)`. When every group is full the answer is `group_full`, and
the rejection tells the issuer how many groups it saw, so auto_create opens the next one.
"""

from __future__ import annotations

import uuid
from dataclasses import replace

import asyncpg
import msgspec

from services.redeemer.application.outcomes import Outcomes, Subject
from services.redeemer.application.people import People
from services.redeemer.application.propagation import Projected, not_propagated
from services.redeemer.application.results import Scanned
from services.redeemer.application.tokens import Grant, Tokens
from services.redeemer.domain import routing
from services.redeemer.domain.inputs import ScanInput
from services.redeemer.domain.refusals import Retry
from shared.events.issuer import RouteRule
from shared.refusals import Reason, Refusal

_LIVE = "SELECT *, now() AS db_now FROM live_codes WHERE live_code_id = $1"
# This person in any of the groups: a membership, or an unredeemed token (whose seat they
# keep), and every group's state for routing, in one read.
_STANDING = """
SELECT g.group_id, g.profile, g.members, g.reserved, g.verified_joins,
       m.joined_at AS member_since, t.scan_id AS held_scan_id
FROM groups g
LEFT JOIN memberships m ON m.group_id = g.group_id AND m.user_id = $2
LEFT JOIN join_tokens t ON t.group_id = g.group_id AND t.user_id = $2
WHERE g.group_id = ANY($1)
"""
_TURN = "UPDATE live_codes SET turn = turn + 1 WHERE live_code_id = $1 RETURNING turn"


class LiveScans:
    def __init__(
        self, *, projected: Projected, people: People, outcomes: Outcomes, tokens: Tokens
    ) -> None:
        self.projected = projected
        self.pool = projected.pool
        self.people = people
        self.outcomes = outcomes
        self.tokens = tokens

    async def scan(self, subject: Subject, scan: ScanInput) -> Scanned:
        live = await self.projected.row(_LIVE, subject.live_code_id)
        if live is None:
            raise not_propagated("live code")
        subject = replace(subject, channel=live["channel"])
        groups: list[uuid.UUID] = list(live["group_ids"])
        try:
            return await self._route(subject, scan, live, groups)
        except Refusal as refusal:
            full = refusal.reason is Reason.GROUP_FULL
            await self.outcomes.rejected(subject, refusal.reason, len(groups) if full else None)
            raise refusal.adding(fallback_url=live["fallback_url"]) from None

    async def _route(
        self, subject: Subject, scan: ScanInput, live: asyncpg.Record, groups: list[uuid.UUID]
    ) -> Scanned:
        if live["status"] == "revoked":
            raise Refusal(Reason.CODE_REVOKED, "this live code was revoked by its owner")
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(_STANDING, groups, subject.user_id)
        member = min(
            (r for r in rows if r["member_since"] is not None),
            key=lambda r: r["member_since"],
            default=None,
        )
        if member is not None:
            return await self.outcomes.member(
                replace(subject, group_id=member["group_id"]), member["member_since"]
            )
        held = next((r for r in rows if r["held_scan_id"] is not None), None)
        if held is not None:  # a person holding an unredeemed token keeps that seat
            candidates = [held["group_id"]]
        else:
            candidates = await self._candidates(live, rows, scan)
        for group_id in candidates:
            try:
                return await self._hand_out(subject, scan, group_id, held, live)
            except Refusal as refusal:
                if refusal.reason is not Reason.GROUP_FULL:
                    raise
            except Retry:
                continue  # the same person, at the same moment: try the next
        raise routing.every_group_full(len(groups), live["max_groups"])

    async def _candidates(
        self, live: asyncpg.Record, rows: list[asyncpg.Record], scan: ScanInput
    ) -> list[uuid.UUID]:
        turn = 0
        if routing.takes_turns(live["strategy"]):
            async with self.pool.acquire() as conn:
                turn = await conn.fetchval(_TURN, live["live_code_id"])
        return routing.candidates(
            strategy=live["strategy"],
            group_ids=live["group_ids"],
            rules=msgspec.json.decode(live["rules"], type=list[RouteRule]),
            projected={
                r["group_id"]: routing.GroupState(
                    r["profile"], r["members"], r["reserved"], r["verified_joins"]
                )
                for r in rows
            },
            attributes=scan.attributes,
            turn=turn,
        )

    async def _hand_out(
        self,
        subject: Subject,
        scan: ScanInput,
        group_id: uuid.UUID,
        held: asyncpg.Record | None,
        live: asyncpg.Record,
    ) -> Scanned:
        """A token for one candidate group, sealed for the person as that group's profile
        keeps them (their key is read, or made, just before)."""
        for attempt in range(2):
            async with self.pool.acquire() as conn:
                person = await self.people.get(conn, subject.tenant_id, subject.user_id, group_id)
            grant = Grant(
                group_id=group_id,
                held=held["held_scan_id"] if held is not None else None,
                db_now=live["db_now"],
                person=person,
                cap=live["switch_at"],
            )
            try:
                return await self.tokens.hand_out(replace(subject, group_id=group_id), scan, grant)
            except Retry as retry:
                if attempt or not retry.person_moved:
                    raise
        raise AssertionError("unreachable")
