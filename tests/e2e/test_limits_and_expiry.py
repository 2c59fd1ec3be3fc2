"""Rate limits shared by replicas, and seats freed when join tokens expire unredeemed."""

from __future__ import annotations

import asyncio

from tests.support.infra import Infra
from tests.support.stack import started_stack


async def test_rate_limits_per_key_tenant_user_and_address_across_replicas(
    infra: Infra,
) -> None:
    env = {
        "QUNMA_RATE_LIMIT_PER_IP": "8",
        "QUNMA_RATE_LIMIT_PER_USER": "3",
        "QUNMA_RATE_LIMIT_PER_KEY": "1000",
        "QUNMA_RATE_LIMIT_PER_TENANT": "1000",
    }
    async with started_stack(infra, extra_env=env, redeemers=2) as stack:
        group = await stack.create_group("limits", profile="wecom_internal")
        code = await stack.issue_code(group["group_id"])
        a, b = stack.replicas

        async def scan(client, user: str, ip: str, key: str | None = None):  # type: ignore[no-untyped-def]
            return await client.post(
                "/v1/scans",
                {"payload": code["payload"], "user_id": user},
                headers={"X-Forwarded-For": ip},
                key=key,
            )

        statuses = [
            (await scan(a if i % 2 else b, "same-user", f"10.0.0.{i}")).status for i in range(4)
        ]
        assert statuses == [200, 200, 200, 429]  # per user, counted across both replicas
        limited = await scan(a, "same-user", "10.0.0.9")
        assert limited.body["code"] == "rate_limited" and limited.body["limited_by"] == ["user"]
        assert 1 <= int(limited.headers["Retry-After"]) <= 60
        # A platform backend calling for many people from one address is one caller, limited
        # by its key, not by the address: the per-address limit is the landing page's.
        many = [(await scan(a if i % 2 else b, f"user-{i}", "10.9.9.9")).status for i in range(12)]
        assert many == [200] * 12
        ok = await scan(a, "fresh", "10.7.7.7")
        assert ok.status == 200 and ok.headers["RateLimit"].startswith('"')
        assert '"key";q=2000;w=2' in ok.headers["RateLimit-Policy"]

        # A key with its own limit (one a second, no burst), on both services.
        made = await stack.issuer.post(
            "/v1/api-keys",
            {"name": "slow", "scopes": ["admin"], "rate_limit": {"per_second": 1, "burst": 1}},
        )
        assert made.status == 201 and made.body["rate_limit"] == {"per_second": 1, "burst": 1}
        slow = made.body["api_key"]
        members = f"/v1/groups/{group['group_id']}/members"
        for client, path in ((stack.issuer, "/v1/groups"), (a, members)):
            async with asyncio.timeout(30):  # the redeemer learns the key from the log
                while (await client.get(path, key=slow)).status == 401:
                    await asyncio.sleep(0.1)
            answers = [await client.get(path, key=slow) for _ in range(5)]
            refused = [r for r in answers if r.status == 429]
            assert refused, [r.status for r in answers]
            assert refused[0].body["limited_by"] == ["key"]
            assert int(refused[0].headers["Retry-After"]) >= 1
        # the tenant's other keys are not slowed by it
        assert (await stack.issuer.get("/v1/groups")).status == 200

        # The landing page: per client address, an IPv6 /64 counted as one.
        page = f"/j/{code['payload'].rsplit('/j/', 1)[1]}"
        seen = [
            (
                await stack.redeemer.get(page, headers={"X-Forwarded-For": f"2001:db8:0:1::{i}"})
            ).status
            for i in range(1, 10)
        ]
        assert seen == [200] * 8 + [429]
        other = await stack.redeemer.get(page, headers={"X-Forwarded-For": "2001:db8:0:2::1"})
        # (2001:db8::1:i are all in 2001:db8::/64; 2001:db8:0:2::1 is another /64)
        assert other.status == 200


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
