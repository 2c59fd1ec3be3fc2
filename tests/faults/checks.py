"""What must hold after any fault: nothing acknowledged lost or doubled, caps held, seats
back to zero, both logs verified and replayed, the services ready and serving, and no 500
at any time."""

from __future__ import annotations

import asyncio
import json
from collections import Counter
from typing import Any

import aiohttp
import asyncpg

from tests.support.cli import qunma
from tests.support.infra import Infra
from tests.support.stack import Client, Stack
from tests.support.workload import Workload


async def setup_workload(stack: Stack, **kw: Any) -> Workload:
    groups = [
        await stack.create_group(f"fault-{i}", profile="wecom_internal", max_members=60)
        for i in range(4)
    ]
    codes = [await stack.issue_code(g["group_id"], max_scans=40) for g in groups]
    for code in codes:  # each known to the redeemer before the load starts
        async with asyncio.timeout(30):
            while (await stack.scan(code["payload"], "warm-up")).status != 200:
                await asyncio.sleep(0.05)
    return Workload(stack, groups, codes, **kw)


async def ready(clients: list[Client], timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        for client in clients:
            while True:
                try:
                    if (await client.get("/readyz")).status == 200:
                        break
                except (aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.1)


async def _rows(dsn: str, sql: str, *args: Any) -> list[asyncpg.Record]:
    conn = await asyncpg.connect(dsn)
    try:
        return list(await conn.fetch(sql, *args))
    finally:
        await conn.close()


async def _until(what: str, probe: Any, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while not await probe():
            await asyncio.sleep(0.2)


async def assert_nothing_lost_or_doubled(stack: Stack, infra: Infra, load: Workload) -> None:
    record = load.record
    assert record.server_errors == [], record.server_errors[:5]
    await ready([stack.issuer, *stack.replicas])
    await stack.quiet(timeout=60)
    issuer_db = stack.env["QUNMA_ISSUER_DATABASE_URL"]
    redeemer_db = stack.env["QUNMA_REDEEMER_DATABASE_URL"]
    group_ids = [g["group_id"] for g in load.groups]
    expected_codes = {c["code_id"] for c in load.codes}
    assert set(record.issued.values()) <= expected_codes

    # Codes: each acknowledged one exactly once, in the issuer's log and read model and in
    # the redeemer's projection; nothing that was not acknowledged.
    issued = await _rows(
        issuer_db,
        "SELECT data->>'code_id' AS code_id, count(*) AS n FROM "
        "(SELECT convert_from(body, 'UTF8')::jsonb->'data' AS data, "
        "convert_from(body, 'UTF8')::jsonb->>'type' AS type FROM events) e "
        "WHERE type = 'CodeIssued' AND data->>'group_id' = ANY($1) GROUP BY 1",
        group_ids,
    )
    assert {r["code_id"] for r in issued} == expected_codes
    assert all(r["n"] == 1 for r in issued)
    projected = await _rows(
        redeemer_db,
        "SELECT code_id::text, status, scans_used, max_scans FROM codes "
        "WHERE group_id::text = ANY($1)",
        group_ids,
    )
    assert {r["code_id"] for r in projected} == expected_codes
    for row in projected:
        assert row["scans_used"] <= row["max_scans"], dict(row)
        if row["code_id"] in record.revoked:
            assert row["status"] == "revoked", dict(row)

    # Memberships: exactly the acknowledged joins; the member counts and caps agree.
    members = await _rows(
        redeemer_db,
        "SELECT m.user_id, m.group_id::text FROM memberships m "
        "WHERE m.group_id::text = ANY($1) AND m.user_id LIKE 'w-%'",
        group_ids,
    )
    assert {r["user_id"]: r["group_id"] for r in members} == record.joins
    joined_events = await _rows(
        redeemer_db,
        "SELECT count(*) AS n FROM events "
        "WHERE convert_from(body, 'UTF8')::jsonb->>'type' = 'MemberJoined' "
        "AND convert_from(body, 'UTF8')::jsonb->'data'->>'group_id' = ANY($1)",
        group_ids,
    )
    assert joined_events[0]["n"] == len(record.joins)

    async def seats_free() -> bool:
        rows = await _rows(
            redeemer_db,
            "SELECT g.members, g.reserved, g.max_members, "
            "(SELECT count(*) FROM memberships m WHERE m.group_id = g.group_id) AS counted "
            "FROM groups g WHERE g.group_id::text = ANY($1)",
            group_ids,
        )
        for row in rows:
            assert row["members"] == row["counted"] <= row["max_members"], dict(row)
        return all(r["reserved"] == 0 for r in rows)

    await _until("every seat of an unredeemed token back", seats_free)

    # The issuer learned every membership once (its follower of the redeemer's log).
    per_group = Counter(record.joins.values())

    async def issuer_agrees() -> bool:
        rows = await _rows(
            issuer_db,
            "SELECT group_id::text, members FROM groups WHERE group_id::text = ANY($1)",
            group_ids,
        )
        return all(r["members"] == per_group[r["group_id"]] for r in rows)

    await _until("the issuer's member counts", issuer_agrees)
    await assert_logs_verify_and_replay(stack, infra)
    await assert_serving(stack)


async def assert_logs_verify_and_replay(stack: Stack, infra: Infra) -> None:
    strict = await qunma(stack.cli_env(), "audit", "verify", "--json")
    if strict.code != 0:
        # Only byte-identical re-deliveries may need the tolerant reading.
        findings = json.loads(strict.out).get("findings", [])
        assert findings and {f["kind"] for f in findings} == {"duplicated"}, strict.out
        tolerant = await qunma(
            stack.cli_env(), "audit", "verify", "--json", "--tolerate-duplicates"
        )
        assert tolerant.code == 0, tolerant.out + tolerant.err
    async with infra.database() as scratch:
        replayed = await qunma(stack.cli_env(), "audit", "replay", "--into", scratch, "--json")
    assert replayed.code == 0, replayed.out + replayed.err
    assert json.loads(replayed.out)["differences"] == []


async def assert_serving(stack: Stack) -> None:
    """A new code is issued and scanned within 10 s."""
    group_id = (await stack.create_group("after the fault", profile="wecom_internal"))["group_id"]
    code = await stack.issue_code(group_id)
    async with asyncio.timeout(10):
        while (answer := await stack.scan(code["payload"], "after-fault")).status != 200:
            assert answer.body["code"] == "code_not_propagated", answer.body
            await asyncio.sleep(0.05)
