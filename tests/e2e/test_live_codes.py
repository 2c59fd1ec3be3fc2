"""Live codes (活码) end to end through the redeemer: every strategy, switch_at, auto_create."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from tests.support.stack import Response, Stack


async def _groups(stack: Stack, count: int, **fields: Any) -> list[str]:
    return [
        (await stack.create_group(f"g{i}", profile="wecom_internal", **fields))["group_id"]
        for i in range(count)
    ]


async def _live(stack: Stack, **fields: Any) -> dict[str, Any]:
    answer = await stack.issuer.post("/v1/live-codes", {"name": "live", **fields})
    assert answer.status == 201, answer.body
    return dict(answer.body)


async def _scan(stack: Stack, live: dict[str, Any], user: str, **fields: Any) -> Response:
    async with asyncio.timeout(10):  # a live code created a moment ago may still be on its way
        while True:
            answer = await stack.scan(live["payload"], user, **fields)
            if answer.body.get("code") != "code_not_propagated":
                return answer
            await asyncio.sleep(0.05)


async def _join(stack: Stack, live: dict[str, Any], user: str, **fields: Any) -> str:
    answer = await _scan(stack, live, user, **fields)
    assert answer.status == 200, answer.body
    group_id = answer.body["group"]["group_id"]
    assert (await stack.join(answer.body["join_token"], user)).status == 201
    return str(group_id)


async def test_fill_in_order_switches_at_switch_at(stack: Stack) -> None:
    groups = await _groups(stack, 2)
    live = await _live(stack, group_ids=groups, switch_at=2)
    placed = [await _join(stack, live, f"f{i}") for i in range(4)]
    assert placed == [groups[0], groups[0], groups[1], groups[1]]
    full = await _scan(stack, live, "f5")
    assert (full.status, full.body["code"]) == (409, "group_full")
    assert "Retry-After" not in full.headers  # no auto_create: nothing will open
    again = await _scan(stack, live, "f0")
    assert again.body["status"] == "member"
    assert again.body["membership"]["group_id"] == groups[0]


async def test_round_robin_and_least_full(stack: Stack) -> None:
    groups = await _groups(stack, 3)
    live = await _live(stack, group_ids=groups, strategy="round_robin")
    placed = [await _join(stack, live, f"r{i}") for i in range(6)]
    assert placed == groups + groups
    busy = await _groups(stack, 2)
    code = await stack.issue_code(busy[0])
    for user in ("x1", "x2"):
        await stack.join((await stack.scan(code["payload"], user)).body["join_token"], user)
    least = await _live(stack, group_ids=busy, strategy="least_full")
    placed = [await _join(stack, least, f"l{i}") for i in range(4)]
    assert Counter(placed) == {busy[1]: 3, busy[0]: 1}
    assert placed[:2] == [busy[1], busy[1]]


async def test_by_attribute_routes_by_the_first_matching_rule(stack: Stack) -> None:
    shanghai, vip, rest = await _groups(stack, 3)
    live = await _live(
        stack,
        group_ids=[rest, shanghai, vip],
        strategy="by_attribute",
        rules=[
            {"match": {"city": ["Shanghai", "上海"]}, "group_id": shanghai},
            {"match": {"tags": ["vip"]}, "group_id": vip},
        ],
    )
    assert await _join(stack, live, "a1", attributes={"city": "上海", "tags": ["vip"]}) == shanghai
    assert (
        await _join(stack, live, "a2", attributes={"city": "Beijing", "tags": ["x", "vip"]}) == vip
    )
    assert await _join(stack, live, "a3", attributes={"city": "Beijing"}) == rest
    assert await _join(stack, live, "a4") == rest


async def test_auto_create_opens_the_next_group(stack: Stack) -> None:
    (first,) = await _groups(stack, 1, max_members=2)
    live = await _live(
        stack,
        group_ids=[first],
        auto_create={"base_name": "Overflow", "max_members": 2, "max_groups": 3},
    )
    assert [await _join(stack, live, f"o{i}") for i in range(2)] == [first, first]
    full = await _scan(stack, live, "o2")
    assert (full.status, full.body["code"], full.headers["Retry-After"]) == (409, "group_full", "1")
    async with asyncio.timeout(15):  # the issuer reacts to the redeemer's event
        while (answer := await _scan(stack, live, "o2")).status != 200:
            assert answer.body["code"] == "group_full"
            await asyncio.sleep(0.1)
    second = answer.body["group"]["group_id"]
    assert second != first and answer.body["group"]["name"] == "Overflow 2"
    await stack.join(answer.body["join_token"], "o2")
    shown = (await stack.issuer.get(f"/v1/live-codes/{live['live_code_id']}")).body
    assert [g["group_id"] for g in shown["groups"]] == [first, second]
    opened = (await stack.issuer.get(f"/v1/groups/{second}")).body
    assert opened["live_code_id"] == live["live_code_id"] and opened["max_members"] == 2
    await _join(stack, live, "o3")
    async with asyncio.timeout(15):
        while (answer := await _scan(stack, live, "o4")).status != 200:
            await asyncio.sleep(0.1)
    assert answer.body["group"]["name"] == "Overflow 3"
    await stack.join(answer.body["join_token"], "o4")
    await _join(stack, live, "o5")
    last = await _scan(stack, live, "o6")  # max_groups reached
    assert last.body["code"] == "group_full" and "Retry-After" not in last.headers
    await stack.settled()  # the issuer has applied that refusal: had it opened a group, it is
    shown = (await stack.issuer.get(f"/v1/live-codes/{live['live_code_id']}")).body
    assert len(shown["groups"]) == 3


async def test_a_revoked_live_code_and_its_stats(stack: Stack) -> None:
    groups = await _groups(stack, 2)
    live = await _live(stack, group_ids=groups, switch_at=1, channel="campaign")
    await _join(stack, live, "s1")
    await _scan(stack, live, "s2")  # a token, not redeemed
    await _scan(stack, live, "s3")  # full
    stats = (await stack.redeemer.get(f"/v1/live-codes/{live['live_code_id']}/stats")).body
    assert stats["totals"]["accepted"] == 2 and stats["totals"]["joins"] == 1
    assert stats["totals"]["rejected_by_reason"] == {"group_full": 1}
    assert {g["group_id"]: g["accepted"] for g in stats["by_group"]} == {groups[0]: 1, groups[1]: 1}
    await stack.issuer.post(f"/v1/live-codes/{live['live_code_id']}/revoke", {"reason": "over"})
    async with asyncio.timeout(10):
        while (answer := await _scan(stack, live, "s4")).body.get("code") != "code_revoked":
            await asyncio.sleep(0.05)
    assert answer.status == 410


async def test_a_live_code_cannot_route_to_groups_that_admit_only_by_approval(
    stack: Stack,
) -> None:
    """gov groups admit only through approval with a real name; a live code has no
    verification of its own, so it could never admit anyone there."""
    gov = await stack.create_group("gov", profile="gov")
    open_group = (await _groups(stack, 1))[0]
    refused = await stack.issuer.post(
        "/v1/live-codes", {"name": "live", "group_ids": [open_group, gov["group_id"]]}
    )
    assert (refused.status, refused.body["code"]) == (422, "outside_profile"), refused.body
    assert refused.body["field"] == "group_ids"
    auto = await stack.issuer.post(
        "/v1/live-codes",
        {
            "name": "live",
            "group_ids": [open_group],
            "auto_create": {"base_name": "more", "profile": "gov"},
        },
    )
    assert (auto.status, auto.body["field"]) == (422, "auto_create.profile"), auto.body
    live = await _live(stack, group_ids=[open_group])
    added = await stack.issuer.call(
        "PATCH", f"/v1/live-codes/{live['live_code_id']}", {"add_group_ids": [gov["group_id"]]}
    )
    assert (added.status, added.body["code"]) == (422, "outside_profile"), added.body


async def test_a_live_code_applies_the_large_personal_group_rule(stack: Stack) -> None:
    """Past 100 members a personal group admits through an unverified code (a live code is
    one) only once 3 members joined through a verified one: the same rule as its codes."""
    group = await stack.create_group("big personal", profile="personal", max_members=200)
    # two codes side by side (a personal code allows 100 scans; no rotation between them)
    plain = [await stack.issue_code(group["group_id"], rotate=False) for _ in range(2)]
    for i in range(101):
        scanned = await stack.scan(plain[i % 2]["payload"], f"member-{i}")
        assert scanned.status == 200, (i, scanned.body)
        assert (await stack.join(scanned.body["join_token"], f"member-{i}")).status == 201
    live = await _live(stack, group_ids=[group["group_id"]])
    refused = await _scan(stack, live, "newcomer")
    assert (refused.status, refused.body["code"]) == (403, "qr_join_disabled"), refused.body
    members = (await stack.redeemer.get(f"/v1/groups/{group['group_id']}/members")).body
    assert "newcomer" not in {m["user_id"] for m in members["members"]}
    verified = await stack.issue_code(
        group["group_id"],
        rotate=False,
        verification={"mode": "invite_code", "invite_code": "OpenSesame42"},
    )
    for i in range(3):
        scanned = await stack.scan(verified["payload"], f"v{i}", invite_code="OpenSesame42")
        assert scanned.status == 200, scanned.body
        assert (await stack.join(scanned.body["join_token"], f"v{i}")).status == 201
    async with asyncio.timeout(10):  # the verified joins reach the projection's counter
        while (answer := await _scan(stack, live, "newcomer")).status != 200:
            assert answer.body["code"] == "qr_join_disabled", answer.body
            await asyncio.sleep(0.1)
