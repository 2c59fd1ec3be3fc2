"""Scanning a live code (活码): route the person to one of its groups.

Each candidate group is tried with the same conditional reservation as a code's group
(`members + reserved < least(max_members, switch_at)`), in the order the strategy gives,
so no group ever passes its cap however many scans race. When every group is full the
answer is `group_full`; with auto_create it carries `Retry-After: 1`, and the rejection
event tells the issuer how many groups were full, so it opens the next one.
"""

from __future__ import annotations

import uuid
from dataclasses import replace
from typing import TYPE_CHECKING

import asyncpg
import msgspec

from services.redeemer import checks
from services.redeemer.refusal import Refused
from services.redeemer.scans import Answer, Moved, PersonMoved, ScanInput, Subject
from shared.events.issuer import RouteRule
from shared.http.problems import Problem

if TYPE_CHECKING:
    from services.redeemer.scans import Scanner

_LIVE = "SELECT *, now() AS db_now FROM live_codes WHERE live_code_id = $1"
_MEMBER_OF_ANY = """
SELECT group_id, joined_at FROM memberships WHERE group_id = ANY($1) AND user_id = $2
ORDER BY joined_at LIMIT 1
"""
_HELD_IN_ANY = (
    "SELECT group_id, scan_id FROM join_tokens WHERE group_id = ANY($1) AND user_id = $2 LIMIT 1"
)
_FILL = """
SELECT group_id FROM groups WHERE group_id = ANY($1)
ORDER BY members + reserved, array_position($1, group_id)
"""


def _matches(rule: RouteRule, attributes: dict[str, list[str]]) -> bool:
    return all(
        any(value in wanted for value in attributes.get(name, []))
        for name, wanted in rule.match.items()
    )


async def _candidates(scanner: Scanner, live: asyncpg.Record, scan: ScanInput) -> list[uuid.UUID]:
    """The groups to try, in the strategy's order: projected ones (a group the issuer opened
    a moment ago may not be yet) that admit through an unverified code (the profile's rules,
    as for a code of that group: a live code has no verification of its own)."""
    async with scanner.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT group_id, profile, members, verified_joins FROM groups "
            "WHERE group_id = ANY($1)",
            live["group_ids"],
        )
    projected = {r["group_id"] for r in rows}
    known = {
        r["group_id"]
        for r in rows
        if checks.qr_join_refusal(r["profile"], "none", r["members"], r["verified_joins"]) is None
    }
    if projected and not known:
        raise Refused("qr_join_disabled", "no group of this live code admits through a QR code now")
    groups: list[uuid.UUID] = [g for g in live["group_ids"] if g in known]
    if not groups:
        return []
    strategy = live["strategy"]
    if strategy == "by_attribute":
        rules = msgspec.json.decode(live["rules"], type=list[RouteRule])
        for rule in rules:
            if _matches(rule, scan.attributes):
                if rule.group_id in projected and rule.group_id not in known:
                    raise Refused(
                        "qr_join_disabled", "the group this scan is routed to admits no QR scans"
                    )
                return [rule.group_id] if rule.group_id in known else []
        return groups  # no rule matches: fill in order
    if strategy == "round_robin":
        async with scanner.pool.acquire() as conn:
            turn = await conn.fetchval(
                "UPDATE live_codes SET turn = turn + 1 WHERE live_code_id = $1 RETURNING turn",
                live["live_code_id"],
            )
        start = (turn - 1) % len(groups)
        return groups[start:] + groups[:start]
    if strategy == "least_full":
        async with scanner.pool.acquire() as conn:
            return [r["group_id"] for r in await conn.fetch(_FILL, groups)]
    return groups


async def _hand_out(
    scanner: Scanner,
    subject: Subject,
    scan: ScanInput,
    group_id: uuid.UUID,
    held: asyncpg.Record | None,
    live: asyncpg.Record,
) -> Answer:
    """A token for one candidate group, sealed for the person as that group's profile
    keeps them (their key is read, or made, just before)."""
    for attempt in range(2):
        async with scanner.pool.acquire() as conn:
            person = await scanner.people.get(conn, subject.tenant_id, subject.user_id, group_id)
        try:
            return await scanner.hand_out_token(
                replace(subject, group_id=group_id),
                group_id,
                scan,
                held=held["scan_id"] if held is not None else None,
                db_now=live["db_now"],
                person=person,
                cap=live["switch_at"],
            )
        except PersonMoved:
            if attempt:
                raise
    raise AssertionError("unreachable")


async def scan_live_code(scanner: Scanner, subject: Subject, scan: ScanInput) -> Answer:
    live = await scanner.poll(_LIVE, subject.live_code_id, give_up=lambda: False)
    if live is None:
        raise Problem(
            "code_not_propagated",
            "this live code was created moments ago and is not known here yet; retry in a second",
            headers={"Retry-After": "1"},
        )
    subject = replace(subject, channel=live["channel"])
    groups: list[uuid.UUID] = list(live["group_ids"])
    try:
        if live["status"] == "revoked":
            raise Refused("code_revoked", "this live code was revoked by its owner")
        async with scanner.pool.acquire() as conn:
            member = await conn.fetchrow(_MEMBER_OF_ANY, groups, subject.user_id)
            held = await conn.fetchrow(_HELD_IN_ANY, groups, subject.user_id)
        if member is not None:
            return await scanner.found_member(
                replace(subject, group_id=member["group_id"]), member["joined_at"]
            )
        # A person holding an unredeemed token for one of the groups keeps that seat.
        candidates = (
            [held["group_id"]] if held is not None else await _candidates(scanner, live, scan)
        )
        for group_id in candidates:
            try:
                return await _hand_out(scanner, subject, scan, group_id, held, live)
            except Refused as refused:
                if refused.reason != "group_full":
                    raise
            except (asyncpg.UniqueViolationError, Moved):
                continue  # the same person, at the same moment: try the next
        # auto_create will open another group: worth retrying in a second.
        more = live["max_groups"] is not None and len(groups) < live["max_groups"]
        headers = {"Retry-After": "1"} if more else {}
        raise Refused("group_full", "every group of this live code is full", headers)
    except Refused as refused:
        raise await scanner.refuse(
            subject,
            refused,
            fallback_url=live["fallback_url"],
            groups_seen=len(groups) if refused.reason == "group_full" else None,
        ) from None
