"""Rate limits shared by replicas, and seats freed when join tokens expire unredeemed."""

from __future__ import annotations

import asyncio

from tests.support.infra import Infra
from tests.support.stack import started_stack


async def test_rate_limits_per_user_and_per_ip_across_replicas(infra: Infra) -> None:
    env = {"QUNMA_RATE_LIMIT_PER_IP": "8", "QUNMA_RATE_LIMIT_PER_USER": "3"}
    async with started_stack(infra, extra_env=env, redeemers=2) as stack:
        group = await stack.create_group("limits", profile="wecom_internal")
        code = await stack.issue_code(group["group_id"])
        a, b = stack.replicas

        async def scan(client, user: str, ip: str):  # type: ignore[no-untyped-def]
            return await client.post(
                "/v1/scans",
                {"payload": code["payload"], "user_id": user},
                headers={"X-Forwarded-For": ip},
            )

        statuses = [
            (await scan(a if i % 2 else b, "same-user", f"10.0.0.{i}")).status for i in range(4)
        ]
        assert statuses == [200, 200, 200, 429]  # per user, counted across both replicas
        limited = await scan(a, "same-user", "10.0.0.9")
        assert limited.body["code"] == "rate_limited"
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        ip_statuses = [
            (await scan(a if i % 2 else b, f"user-{i}", "10.9.9.9")).status for i in range(9)
        ]
        assert ip_statuses == [200] * 8 + [429]  # per IP, counted across both replicas
        assert (await scan(a, "fresh", "10.7.7.7")).status == 200


async def test_an_unredeemed_token_frees_its_seat_when_it_expires(infra: Infra) -> None:
    env = {"QUNMA_JOIN_TOKEN_TTL_SECONDS": "1", "QUNMA_RATE_LIMIT_PER_IP": "0"}
    async with started_stack(infra, extra_env=env) as stack:
        group = await stack.create_group("one seat", profile="wecom_internal", max_members=1)
        code = await stack.issue_code(group["group_id"])
        held = await stack.scan(code["payload"], "slow")
        assert held.status == 200
        full = await stack.scan(code["payload"], "quick")
        assert full.body["code"] == "group_full"
        async with asyncio.timeout(10):
            while (answer := await stack.scan(code["payload"], "quick")).status != 200:
                await asyncio.sleep(0.2)
        late = await stack.join(held.body["join_token"], "slow")
        assert (late.status, late.body["code"]) == (410, "token_expired")
        assert (await stack.join(answer.body["join_token"], "quick")).status == 201
