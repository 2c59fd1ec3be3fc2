"""Issue 4's proofs: caps hold exactly when real processes race. Two redeemer replicas (two
processes on different ports) share one database; hundreds of concurrent requests are spread
over both; the database is then checked directly."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg
import pytest

from tests.support.infra import Infra
from tests.support.stack import Client, Response, Stack, in_process_redeemer, started_stack

ENV = {
    "QUNMA_RATE_LIMIT_PER_IP": "0",
    "QUNMA_RATE_LIMIT_PER_USER": "0",
    "QUNMA_RATE_LIMIT_PER_KEY": "0",
    "QUNMA_RATE_LIMIT_PER_TENANT": "0",
    "QUNMA_JOIN_TOKEN_TTL_SECONDS": "10",
}


@pytest.fixture(scope="module")
async def race(infra: Infra) -> AsyncIterator[Stack]:
    async with started_stack(infra, extra_env=ENV, redeemers=2) as stack:
        yield stack


@pytest.fixture(scope="module")
async def wide() -> AsyncIterator[aiohttp.ClientSession]:
    # One session with no connection cap: the requests really are concurrent.
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        yield session


def _replica(stack: Stack, session: aiohttp.ClientSession, i: int) -> Client:
    chosen = stack.replicas[i % len(stack.replicas)]
    return Client(session, chosen.base, stack.api_key)


async def _db(stack: Stack, sql: str, *args: Any) -> Any:
    conn = await asyncpg.connect(stack.env["QUNMA_REDEEMER_DATABASE_URL"])
    try:
        return await conn.fetchrow(sql, *args)
    finally:
        await conn.close()


async def _known(stack: Stack, table: str, column: str, value: str) -> None:
    """Wait until the redeemer's projection holds the code (scanning would count)."""
    async with asyncio.timeout(10):
        while await _db(stack, f"SELECT 1 FROM {table} WHERE {column} = $1", value) is None:
            await asyncio.sleep(0.05)


async def test_1000_concurrent_scans_of_a_100_scan_code_get_exactly_100_tokens(
    race: Stack,
    wide: aiohttp.ClientSession,
) -> None:
    group = await race.create_group("race scans", profile="qq")
    code = await race.issue_code(group["group_id"], max_scans=100)
    await _known(race, "codes", "code_id", code["code_id"])
    answers: list[Response] = await asyncio.gather(
        *(
            _replica(race, wide, i).post(
                "/v1/scans", {"payload": code["payload"], "user_id": f"u{i}"}
            )
            for i in range(1000)
        )
    )
    statuses = Counter((a.status, a.body.get("code") or a.body.get("status")) for a in answers)
    assert statuses == {(200, "token"): 100, (429, "scan_limit_reached"): 900}, statuses
    row = await _db(race, "SELECT scans_used FROM codes WHERE code_id = $1", code["code_id"])
    assert row["scans_used"] == 100
    facts = await _db(
        race,
        "SELECT count(*) FILTER (WHERE outcome = 'accepted') AS ok, "
        "count(*) FILTER (WHERE reason = 'scan_limit_reached') AS refused "
        "FROM scan_facts WHERE code_id = $1",
        code["code_id"],
    )
    assert (facts["ok"], facts["refused"]) == (100, 900)
    async with asyncio.timeout(20):  # the issuer's counters, from the redeemer's events
        while True:
            counters = (await race.issuer.get(f"/v1/codes/{code['code_id']}")).body["counters"]
            if (counters["scans_used"], counters["scans_rejected"]) == (100, 900):
                break
            await asyncio.sleep(0.1)
    counters = (await race.issuer.get(f"/v1/codes/{code['code_id']}")).body["counters"]
    assert counters["scans_remaining"] == 0 and counters["scans_rejected"] == 900


async def test_500_scan_and_join_attempts_fill_200_seats_exactly(
    race: Stack,
    wide: aiohttp.ClientSession,
) -> None:
    group = await race.create_group("race seats", profile="qq", max_members=200)
    code = await race.issue_code(group["group_id"])
    await _known(race, "codes", "code_id", code["code_id"])

    async def attempt(i: int, abandon: bool) -> str:
        client = _replica(race, wide, i)
        scan = await client.post("/v1/scans", {"payload": code["payload"], "user_id": f"p{i}"})
        if scan.status != 200:
            return str(scan.body["code"])
        if abandon:
            return "abandoned"
        joined = await _replica(race, wide, i + 1).post(
            "/v1/joins", {"join_token": scan.body["join_token"], "user_id": f"p{i}"}
        )
        return "joined" if joined.status == 201 else str(joined.body)

    outcomes = Counter(await asyncio.gather(*(attempt(i, i % 10 == 0) for i in range(500))))
    seats = await _db(
        race, "SELECT members, reserved FROM groups WHERE group_id = $1", group["group_id"]
    )
    assert outcomes["joined"] + outcomes["abandoned"] == 200
    assert outcomes["group_full"] == 500 - 200
    assert seats["members"] + seats["reserved"] == 200
    assert seats["reserved"] == outcomes["abandoned"]

    async with asyncio.timeout(30):  # abandoned tokens expire; the sweeper frees their seats
        while (
            await _db(race, "SELECT reserved FROM groups WHERE group_id = $1", group["group_id"])
        )["reserved"]:
            await asyncio.sleep(0.2)
    free = (
        200
        - (await _db(race, "SELECT members FROM groups WHERE group_id = $1", group["group_id"]))[
            "members"
        ]
    )
    assert free == outcomes["abandoned"]
    second = Counter(await asyncio.gather(*(attempt(1000 + i, False) for i in range(100))))
    assert second["joined"] == free and second["group_full"] == 100 - free
    final = await _db(
        race,
        "SELECT members, reserved, (SELECT count(*) FROM memberships m "
        "WHERE m.group_id = g.group_id) AS rows FROM groups g "
        "WHERE group_id = $1",
        group["group_id"],
    )
    assert (final["members"], final["reserved"], final["rows"]) == (200, 0, 200)


async def test_100_concurrent_redemptions_of_one_token_make_one_membership(
    race: Stack,
    wide: aiohttp.ClientSession,
) -> None:
    group = await race.create_group("race token", profile="qq")
    code = await race.issue_code(group["group_id"])
    await _known(race, "codes", "code_id", code["code_id"])
    token = (await race.scan(code["payload"], "winner")).body["join_token"]
    answers = await asyncio.gather(
        *(
            _replica(race, wide, i).post(
                "/v1/joins", {"join_token": token, "user_id": "winner" if i % 4 else "thief"}
            )
            for i in range(100)
        )
    )
    by_status = Counter((a.status, a.body.get("code")) for a in answers)
    assert by_status[(201, None)] == 1
    assert by_status[(200, None)] == 74
    assert (
        sum(
            n
            for (status, code_), n in by_status.items()
            if code_ in ("token_used", "token_mismatch")
        )
        == 25
    )
    row = await _db(
        race, "SELECT count(*) AS n FROM memberships WHERE group_id = $1", group["group_id"]
    )
    assert row["n"] == 1
    events = await _db(
        race,
        "SELECT count(*) AS n FROM events WHERE type = 'MemberJoined' "
        "AND convert_from(data, 'UTF8')::jsonb ->> 'group_id' = $1",
        group["group_id"],
    )
    assert events["n"] == 1


async def test_a_live_code_never_fills_a_group_past_switch_at(
    race: Stack,
    wide: aiohttp.ClientSession,
) -> None:
    groups = [(await race.create_group(f"live {i}", profile="qq"))["group_id"] for i in range(3)]
    live = await race.issuer.post(
        "/v1/live-codes", {"name": "race live", "group_ids": groups, "switch_at": 50}
    )
    payload = live.body["payload"]
    await _known(race, "live_codes", "live_code_id", live.body["live_code_id"])
    answers = await asyncio.gather(
        *(
            _replica(race, wide, i).post("/v1/scans", {"payload": payload, "user_id": f"l{i}"})
            for i in range(600)
        )
    )
    accepted = Counter(a.body["group"]["group_id"] for a in answers if a.status == 200)
    assert accepted == {groups[0]: 50, groups[1]: 50, groups[2]: 50}
    for group_id in groups:
        row = await _db(
            race, "SELECT members + reserved AS taken FROM groups WHERE group_id = $1", group_id
        )
        assert row["taken"] == 50
    assert sum(1 for a in answers if a.body.get("code") == "group_full") == 600 - 150


async def test_concurrent_rotations_of_one_group_leave_exactly_one_live_code(
    race: Stack,
    wide: aiohttp.ClientSession,
) -> None:
    # Each issue locks the group's row before it supersedes the others (the rule in
    # services/issuer/handlers/codes.py): without it two could each miss the other.
    group_id = (await race.create_group("race rotate", profile="qq"))["group_id"]
    issuer = Client(wide, race.issuer.base, race.api_key)
    answers = await asyncio.gather(
        *(issuer.post(f"/v1/groups/{group_id}/codes", {"rotate": True}) for _ in range(30))
    )
    assert [a.status for a in answers] == [201] * 30
    listed = (await race.issuer.get(f"/v1/groups/{group_id}/codes?limit=100")).body["codes"]
    assert Counter(c["status"] for c in listed) == {"active": 1, "superseded": 29}
    conn = await asyncpg.connect(race.env["QUNMA_ISSUER_DATABASE_URL"])
    try:
        live = await conn.fetchval(
            "SELECT count(*) FROM codes WHERE group_id = $1 AND superseded_at IS NULL",
            uuid.UUID(group_id),
        )
        superseded = await conn.fetchval(
            "SELECT count(*) FROM events WHERE type = 'CodeSuperseded' AND kafka_key = $1",
            group_id,
        )
    finally:
        await conn.close()
    assert (live, superseded) == (1, 29)  # each superseded exactly once


async def test_revocation_stops_scans_everywhere_but_a_token_already_handed_out_redeems(
    race: Stack,
) -> None:
    group = await race.create_group("race revoke", profile="qq")
    code = await race.issue_code(group["group_id"])
    await _known(race, "codes", "code_id", code["code_id"])
    token = (await race.scan(code["payload"], "early-bird")).body["join_token"]
    await race.issuer.post(f"/v1/codes/{code['code_id']}/revoke", {"reason": "leaked"})
    for replica in race.replicas:
        async with asyncio.timeout(10):
            while (
                await replica.post("/v1/scans", {"payload": code["payload"], "user_id": "late"})
            ).status == 200:
                await asyncio.sleep(0.02)
    joined = await race.join(token, "early-bird")
    assert joined.status == 201  # the rule: a token already handed out keeps its 15 s


async def test_the_daily_cap_rolls_over_at_local_midnight(race: Stack) -> None:
    group = await race.create_group("daily", profile="qq", timezone="Asia/Shanghai")
    code = await race.issue_code(group["group_id"], daily_scan_limit=2)
    shanghai_midnight = datetime(2026, 11, 29, 16, 0, tzinfo=UTC)  # 00:00 on the 30th there
    now = [shanghai_midnight - timedelta(seconds=30)]
    async with in_process_redeemer(race, lambda: now[0]) as redeemer:
        await _known(race, "codes", "code_id", code["code_id"])

        async def scan(user: str) -> Response:
            return await redeemer.post("/v1/scans", {"payload": code["payload"], "user_id": user})

        assert [(await scan(f"n{i}")).status for i in range(2)] == [200, 200]
        refused = await scan("n3")
        assert refused.body["code"] == "daily_limit_reached"
        assert refused.headers["Retry-After"] == "30"
        now[0] = shanghai_midnight + timedelta(seconds=1)
        assert [(await scan(f"m{i}")).status for i in range(2)] == [200, 200]
        assert (await scan("m3")).body["code"] == "daily_limit_reached"
    days = await _db(
        race,
        "SELECT array_agg(day ORDER BY day)::text[] AS days, "
        "array_agg(scans ORDER BY day) AS scans FROM code_daily_scans "
        "WHERE code_id = $1",
        code["code_id"],
    )
    assert days["days"] == ["2026-11-29", "2026-11-30"] and days["scans"] == [2, 2]


async def test_one_new_person_scanning_everywhere_at_once_is_one_person_with_one_key(
    race: Stack,
    wide: aiohttp.ClientSession,
) -> None:
    """A person unknown so far scans 20 codes at the same instant, through both replicas:
    each scan would make the person and today's key. Exactly one person and one key (per
    profile and day) come out, and every event names that person and seals with that key."""
    codes, groups = [], []
    for i in range(20):
        group = await race.create_group(f"everywhere {i}", profile="personal")
        groups.append(group["group_id"])
        codes.append(await race.issue_code(group["group_id"]))
    for code in codes:
        await _known(race, "codes", "code_id", code["code_id"])
    answers = await asyncio.gather(
        *(
            _replica(race, wide, i).post(
                "/v1/scans", {"payload": code["payload"], "user_id": "wx-everywhere"}
            )
            for i, code in enumerate(codes)
        )
    )
    assert [a.status for a in answers] == [200] * 20, [a.body for a in answers]
    people = await _db(
        race,
        "SELECT count(*) AS n, min(person) AS person FROM people WHERE user_id = $1",
        "wx-everywhere",
    )
    assert people["n"] == 1
    keys = await _db(
        race,
        "SELECT count(*) AS n, min(key_id) AS key_id FROM person_keys WHERE person = $1",
        people["person"],
    )
    assert keys["n"] == 1
    events = await _db(
        race,
        "WITH e AS (SELECT convert_from(data, 'UTF8')::jsonb AS d FROM events "
        "WHERE type = 'ScanAccepted') "
        "SELECT count(*) AS n, count(DISTINCT d ->> 'person') AS persons, "
        "count(DISTINCT d -> 'user' ->> 'k') AS keys, min(d ->> 'person') AS person, "
        "min(d -> 'user' ->> 'k') AS key_id FROM e WHERE d ->> 'group_id' = ANY($1)",
        groups,
    )
    assert (events["n"], events["persons"], events["keys"]) == (20, 1, 1)
    assert (events["person"], events["key_id"]) == (people["person"], keys["key_id"])
