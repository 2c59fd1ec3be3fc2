"""The broker can be lost: a wiped Tansu gets every event again, nothing is applied twice."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.support.infra import Infra
from tests.support.logcheck import sealed_heads, topic_positions
from tests.support.stack import Stack, started_stack

PROJECTION = {
    "groups": "SELECT group_id, name, max_members, members, reserved FROM groups ORDER BY group_id",
    "codes": "SELECT code_id, status, scans_used FROM codes ORDER BY code_id",
    "memberships": "SELECT group_id, user_id, joined_at FROM memberships "
    "ORDER BY group_id, user_id",
    "tracking": "SELECT log, partition, position, hash FROM tracking ORDER BY log, partition",
}


async def _snapshot(dsn: str) -> dict[str, list[Any]]:
    conn = await asyncpg.connect(dsn)
    try:
        return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in PROJECTION.items()}
    finally:
        await conn.close()


async def _topic_complete(stack: Stack, topic: str, dsn: str, timeout: float = 60) -> None:
    heads = await sealed_heads(dsn)
    async with asyncio.timeout(timeout):
        while True:
            held = await topic_positions(stack.settings.kafka, topic, stack.settings.partitions)
            if all(held[p] >= set(range(1, heads[p] + 1)) for p in heads):
                return
            await asyncio.sleep(0.5)


async def test_a_wiped_broker_is_refilled_and_the_projection_is_unchanged(infra: Infra) -> None:
    # Checkpoints come 0.5 s after the last event, so the logs settle quickly.
    env = {"QUNMA_CHECKPOINT_SECONDS": "0.5"}
    async with started_stack(infra, own_broker=True, extra_env=env) as stack:
        issuer_db = stack.env["QUNMA_ISSUER_DATABASE_URL"]
        redeemer_db = stack.env["QUNMA_REDEEMER_DATABASE_URL"]
        group = await stack.create_group("Before the wipe")
        code = await stack.issue_code(group["group_id"])
        token = (await stack.scan(code["payload"], "alice")).body["join_token"]
        assert (await stack.join(token, "alice")).status == 201
        await stack.quiet()
        await _topic_complete(stack, stack.settings.issuer_topic, issuer_db)
        await _topic_complete(stack, stack.settings.redeemer_topic, redeemer_db)
        before = await _snapshot(redeemer_db)

        await stack.restart_broker()  # Tansu keeps records in memory: the new one is empty

        await _topic_complete(stack, stack.settings.issuer_topic, issuer_db)
        await _topic_complete(stack, stack.settings.redeemer_topic, redeemer_db)
        assert await _snapshot(redeemer_db) == before, "replayed events were applied again"

        # New events still flow through the new broker, both ways.
        fresh = await stack.issue_code(group["group_id"])
        async with asyncio.timeout(30):
            while (scan := await stack.scan(fresh["payload"], "bob")).status != 200:
                assert scan.body["code"] == "code_not_propagated", scan.body
                await asyncio.sleep(0.2)
        assert (await stack.join(scan.body["join_token"], "bob")).status == 201
        await stack.issuer.post(f"/v1/codes/{fresh['code_id']}/revoke", {"reason": "after"})
        async with asyncio.timeout(30):
            while (await stack.scan(fresh["payload"], "carol")).status == 200:
                await asyncio.sleep(0.1)
        assert (await stack.redeemer.get("/readyz")).status == 200
        members = await stack.redeemer.get(f"/v1/groups/{group['group_id']}/members")
        assert [m["user_id"] for m in members.body["members"]] == ["alice", "bob"]
