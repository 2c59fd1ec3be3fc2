"""Issue 4: every check of the scan decision, its answer, and the order they run in."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from tests.support.stack import Response, Stack

SHANGHAI = {"lat": 31.2304, "lon": 121.4737}


async def _code(
    stack: Stack,
    profile: str = "wecom_internal",
    group: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    group = group or await stack.create_group(f"rules {uuid.uuid4().hex[:6]}", profile=profile)
    code = await stack.issue_code(group["group_id"], **fields)
    code["group"] = group
    return code


async def _scan(
    stack: Stack,
    code: dict[str, Any],
    user: str,
    headers: dict[str, str] | None = None,
    **fields: Any,
) -> Response:
    return await stack.redeemer.post(
        "/v1/scans", {"payload": code["payload"], "user_id": user, **fields}, headers=headers
    )


def _problem(answer: Response, status: int, code: str) -> None:
    assert (answer.status, answer.body.get("code")) == (status, code), answer.body
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["detail"] and answer.body["message_zh"]


async def test_a_code_before_not_before_is_not_active(stack: Stack) -> None:
    start = (datetime.now(UTC) + timedelta(hours=2)).replace(microsecond=0)
    code = await _code(stack, not_before=start.isoformat())
    answer = await _scan(stack, code, "early")
    _problem(answer, 409, "code_not_active")
    assert 7000 < int(answer.headers["Retry-After"]) <= 7201
    assert datetime.fromisoformat(answer.body["active_from"]) == start


async def test_ip_allowlist_uses_the_forwarded_address_of_a_trusted_proxy(stack: Stack) -> None:
    code = await _code(stack, ip_allowlist=["10.0.0.0/8", "2001:db8::/32"])
    _problem(await _scan(stack, code, "no-header"), 403, "ip_not_allowed")
    outside = await _scan(stack, code, "outside", {"X-Forwarded-For": "192.168.1.7"})
    _problem(outside, 403, "ip_not_allowed")
    inside = await _scan(stack, code, "inside", {"X-Forwarded-For": "10.20.30.40"})
    assert inside.status == 200, inside.body
    v6 = await _scan(stack, code, "inside-v6", {"X-Forwarded-For": "2001:db8::1"})
    assert v6.status == 200
    # The client is the rightmost address that is not a trusted proxy.
    chained = await _scan(stack, code, "chained", {"X-Forwarded-For": "10.1.1.1, 127.0.0.1"})
    assert chained.status == 200
    spoofed = await _scan(stack, code, "spoof", {"X-Forwarded-For": "10.1.1.1, 8.8.8.8"})
    _problem(spoofed, 403, "ip_not_allowed")


async def test_geofence_needs_a_location_inside_it(stack: Stack) -> None:
    code = await _code(stack, geofence={**SHANGHAI, "radius_m": 1000})
    _problem(await _scan(stack, code, "nowhere"), 400, "location_required")
    far = await _scan(stack, code, "beijing", location={"lat": 39.9042, "lon": 116.4074})
    _problem(far, 403, "outside_geofence")
    # ~1.2 km away: outside 1000 m even with a claimed 10 km accuracy (slack is capped at 50 m)
    near = {"lat": 31.2412, "lon": 121.4737}
    _problem(
        await _scan(stack, code, "edge", location={**near, "accuracy_m": 10_000}),
        403,
        "outside_geofence",
    )
    inside = await _scan(
        stack, code, "here", location={"lat": 31.2310, "lon": 121.4740, "accuracy_m": 15}
    )
    assert inside.status == 200, inside.body


async def test_bind_device_ties_the_token_to_the_scanning_device(stack: Stack) -> None:
    code = await _code(stack, bind_device=True)
    _problem(await _scan(stack, code, "nodevice"), 403, "device_not_allowed")
    token = (await _scan(stack, code, "dev-user", device_id="phone-1")).body["join_token"]
    other = await stack.redeemer.post(
        "/v1/joins", {"join_token": token, "user_id": "dev-user", "device_id": "laptop-9"}
    )
    _problem(other, 403, "token_mismatch")
    joined = await stack.redeemer.post(
        "/v1/joins", {"join_token": token, "user_id": "dev-user", "device_id": "phone-1"}
    )
    assert joined.status == 201, joined.body


async def test_invite_code_attempts_are_capped(stack: Stack) -> None:
    code = await _code(stack, verification={"mode": "invite_code", "invite_code": "OPEN42"})
    _problem(await _scan(stack, code, "guesser"), 400, "verification_required")
    left = []
    for guess in ("1111", "2222", "3333", "4444", "5555"):
        answer = await _scan(stack, code, "guesser", invite_code=guess)
        _problem(answer, 403, "verification_failed")
        left.append(answer.body["attempts_left"])
    assert left == [4, 3, 2, 1, 0]
    locked = await _scan(stack, code, "guesser", invite_code="OPEN42")
    _problem(locked, 429, "too_many_attempts")
    assert 500 < int(locked.headers["Retry-After"]) <= 600
    other = await _scan(stack, code, "honest", invite_code="OPEN42")
    assert other.status == 200
    joined = await stack.join(other.body["join_token"], "honest")
    assert joined.status == 201


async def test_concurrent_wrong_answers_count_at_most_five(stack: Stack) -> None:
    code = await _code(stack, verification={"mode": "invite_code", "invite_code": "RIGHT1"})
    answers = await asyncio.gather(
        *(_scan(stack, code, "racer", invite_code=f"W{i:04d}") for i in range(12))
    )
    codes = sorted(a.body["code"] for a in answers)
    assert codes.count("verification_failed") == 5
    assert codes.count("too_many_attempts") == 7


async def test_phone_last4_against_the_codes_list(stack: Stack) -> None:
    code = await _code(stack, verification={"mode": "phone_last4", "phone_last4": ["1234"]})
    _problem(await _scan(stack, code, "ph"), 400, "verification_required")
    _problem(await _scan(stack, code, "ph", phone_last4="9999"), 403, "verification_failed")
    assert (await _scan(stack, code, "ph", phone_last4="1234")).status == 200
    open_code = await _code(stack, verification={"mode": "phone_last4"})
    assert (await _scan(stack, open_code, "ph2", phone_last4="0000")).status == 200


async def test_approval_and_real_name_make_join_requests(stack: Stack) -> None:
    code = await _code(stack, verification={"mode": "approval"})
    first = await _scan(stack, code, "asker")
    assert first.status == 202
    assert first.body["status"] == "pending" and "join_token" not in first.body
    again = await _scan(stack, code, "asker")
    assert again.body["join_request_id"] == first.body["join_request_id"]
    other = await _scan(stack, code, "asker2")
    group_id = code["group"]["group_id"]
    pending = (await stack.redeemer.get(f"/v1/groups/{group_id}/join-requests")).body
    assert {r["user_id"] for r in pending["join_requests"]} == {"asker", "asker2"}
    approved = await stack.redeemer.post(
        f"/v1/join-requests/{first.body['join_request_id']}/approve"
    )
    assert approved.status == 201 and approved.body["user_id"] == "asker"
    twice = await stack.redeemer.post(f"/v1/join-requests/{first.body['join_request_id']}/approve")
    _problem(twice, 409, "join_request_decided")
    declined = await stack.redeemer.post(
        f"/v1/join-requests/{other.body['join_request_id']}/decline", {"reason": "not on the list"}
    )
    assert declined.status == 204
    listed = (await stack.redeemer.get(f"/v1/groups/{group_id}/join-requests?status=declined")).body
    assert [r["decline_reason"] for r in listed["join_requests"]] == ["not on the list"]
    member = await _scan(stack, code, "asker")
    assert member.body["status"] == "member"
    missing = await stack.redeemer.post(f"/v1/join-requests/{uuid.uuid4()}/approve")
    assert missing.status == 404

    gov = await _code(stack, profile="gov")
    assert gov["verification"]["mode"] == "real_name"
    _problem(await _scan(stack, gov, "citizen"), 400, "verification_required")
    request = await _scan(stack, gov, "citizen", real_name="张三")
    assert request.status == 202
    listed = (await stack.redeemer.get(f"/v1/groups/{gov['group']['group_id']}/join-requests")).body
    assert listed["join_requests"][0]["real_name"] == "张三"


async def test_approval_respects_the_member_cap(stack: Stack) -> None:
    group = await stack.create_group("tiny", profile="wecom_internal", max_members=1)
    code = await _code(stack, group=group, verification={"mode": "approval"})
    one = (await _scan(stack, code, "one")).body["join_request_id"]
    two = (await _scan(stack, code, "two")).body["join_request_id"]
    assert (await stack.redeemer.post(f"/v1/join-requests/{one}/approve")).status == 201
    _problem(await stack.redeemer.post(f"/v1/join-requests/{two}/approve"), 409, "group_full")


async def test_daily_cap_answers_with_retry_after_to_local_midnight(stack: Stack) -> None:
    code = await _code(stack, daily_scan_limit=2)
    assert [(await _scan(stack, code, f"d{i}")).status for i in range(2)] == [200, 200]
    third = await _scan(stack, code, "d3")
    _problem(third, 429, "daily_limit_reached")
    now = datetime.now(UTC).astimezone(__import__("zoneinfo").ZoneInfo("Asia/Shanghai"))
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    assert abs(int(third.headers["Retry-After"]) - (midnight - now).total_seconds()) < 5


async def test_checks_run_in_the_documented_order(stack: Stack) -> None:
    code = await _code(
        stack,
        ip_allowlist=["10.0.0.0/8"],
        geofence={**SHANGHAI, "radius_m": 500},
        bind_device=True,
        verification={"mode": "invite_code", "invite_code": "ABCD"},
        max_scans=1,
    )
    ip = {"X-Forwarded-For": "10.0.0.1"}
    _problem(await _scan(stack, code, "o"), 403, "ip_not_allowed")
    _problem(await _scan(stack, code, "o", ip), 400, "location_required")
    here = {"location": {**SHANGHAI}}
    _problem(await _scan(stack, code, "o", ip, **here), 403, "device_not_allowed")
    _problem(await _scan(stack, code, "o", ip, **here, device_id="d"), 400, "verification_required")
    ok = await _scan(stack, code, "o", ip, **here, device_id="d", invite_code="ABCD")
    assert ok.status == 200
    _problem(
        await _scan(stack, code, "p", ip, **here, device_id="d", invite_code="ABCD"),
        429,
        "scan_limit_reached",
    )
    await stack.issuer.post(f"/v1/codes/{code['code_id']}/revoke", {"reason": "x"})
    async with asyncio.timeout(10):
        while (answer := await _scan(stack, code, "q")).body["code"] == "ip_not_allowed":
            await asyncio.sleep(0.05)
    _problem(answer, 410, "code_revoked")  # a dead code says so before anything else


async def test_a_dead_code_offers_its_fallback_url(stack: Stack) -> None:
    code = await _code(stack, fallback_url="https://example.com/new-code")
    await stack.issuer.post(f"/v1/codes/{code['code_id']}/revoke", {"reason": "moved"})
    async with asyncio.timeout(10):
        while (answer := await _scan(stack, code, "late")).status == 200:
            await asyncio.sleep(0.05)
    _problem(answer, 410, "code_revoked")
    assert answer.body["fallback_url"] == "https://example.com/new-code"


async def test_a_member_leaves_and_the_seat_is_free(stack: Stack) -> None:
    group = await stack.create_group("two seats", profile="wecom_internal", max_members=2)
    code = await _code(stack, group=group)
    for user in ("a", "b"):
        assert (
            await stack.join((await _scan(stack, code, user)).body["join_token"], user)
        ).status == 201
    _problem(await _scan(stack, code, "c"), 409, "group_full")
    left = await stack.redeemer.call("DELETE", f"/v1/groups/{group['group_id']}/members/a")
    assert left.status == 204
    assert (
        await stack.redeemer.call("DELETE", f"/v1/groups/{group['group_id']}/members/a")
    ).status == 404
    assert (await _scan(stack, code, "c")).status == 200
    members = (await stack.redeemer.get(f"/v1/groups/{group['group_id']}/members")).body
    assert [m["user_id"] for m in members["members"]] == ["b"]
    async with asyncio.timeout(10):  # the issuer learns it from the redeemer's log
        while (await stack.issuer.get(f"/v1/groups/{group['group_id']}")).body["member_count"] != 1:
            await asyncio.sleep(0.05)


async def test_counters_and_stats_follow_the_scans(stack: Stack) -> None:
    code = await _code(
        stack,
        max_scans=10,
        daily_scan_limit=5,
        channel="poster",
        verification={"mode": "invite_code", "invite_code": "STAT"},
    )
    for user in ("s1", "s2", "s3"):
        answer = await _scan(stack, code, user, invite_code="STAT")
        if user != "s3":
            await stack.join(answer.body["join_token"], user)
    await _scan(stack, code, "s4", invite_code="NOPE")
    stats = (await stack.redeemer.get(f"/v1/codes/{code['code_id']}/stats")).body
    totals = stats["totals"]
    assert (totals["accepted"], totals["rejected"], totals["joins"]) == (3, 1, 2)
    assert totals["rejected_by_reason"] == {"verification_failed": 1}
    assert totals["conversion"] == round(2 / 3, 4)
    assert len(stats["by_day"]) == 1 and stats["by_day"][0]["accepted"] == 3
    assert sum(b["accepted"] for b in stats["by_hour"]) == 3
    assert stats["by_channel"] == [{"channel": "poster", "accepted": 3, "rejected": 1, "joins": 2}]
    group_stats = (await stack.redeemer.get(f"/v1/groups/{code['group']['group_id']}/stats")).body
    assert group_stats["totals"]["accepted"] == 3
    assert (await stack.redeemer.get(f"/v1/codes/{uuid.uuid4()}/stats")).status == 404
    async with asyncio.timeout(10):  # the issuer's live counters, learned from the log
        while True:
            counters = (await stack.issuer.get(f"/v1/codes/{code['code_id']}")).body["counters"]
            if (counters["scans_used"], counters["joins"], counters["scans_rejected"]) == (3, 2, 1):
                break
            await asyncio.sleep(0.05)
    assert counters["scans_remaining"] == 7
    assert counters["scans_today"] == 3 and counters["scans_today_remaining"] == 2
    assert counters["scans_rejected"] == 1


async def test_large_personal_groups_need_verified_members(stack: Stack) -> None:
    """WeChat's rule: past 100 members, unverified QR joining stops until 3 members joined
    through a verified mode."""
    group = await stack.create_group("big personal")
    first = await stack.issue_code(group["group_id"])
    second_batch: list[str] = []

    async def admit(code: dict[str, Any], user: str, **fields: Any) -> None:
        answer = await _scan(stack, code, user, **fields)
        assert answer.status == 200, answer.body
        assert (await stack.join(answer.body["join_token"], user)).status == 201

    for i in range(100):
        await admit(first, f"m{i}")
    second = await stack.issue_code(group["group_id"])  # rotation supersedes the first
    await admit(second, "m100")
    second_batch.append("m100")
    _problem(await _scan(stack, second, "m101"), 403, "qr_join_disabled")
    async with asyncio.timeout(15):
        while (await stack.issuer.get(f"/v1/groups/{group['group_id']}")).body[
            "member_count"
        ] < 101:
            await asyncio.sleep(0.1)
    refused = await stack.issuer.post(f"/v1/groups/{group['group_id']}/codes", {})
    _problem(refused, 409, "verified_members_required")
    verified = await stack.issue_code(
        group["group_id"], rotate=False, verification={"mode": "invite_code", "invite_code": "VIP1"}
    )
    for user in ("v1", "v2", "v3"):
        await admit(verified, user, invite_code="VIP1")
    assert (await _scan(stack, second, "m101")).status == 200
    async with asyncio.timeout(15):
        while (await stack.issuer.get(f"/v1/groups/{group['group_id']}")).body[
            "verified_joins"
        ] < 3:
            await asyncio.sleep(0.1)
    assert (await stack.issuer.post(f"/v1/groups/{group['group_id']}/codes", {})).status == 201


async def test_bodies_over_16_kib_are_refused(stack: Stack) -> None:
    raw = await stack.redeemer.session.post(
        stack.redeemer.base + "/v1/scans",
        data=b'{"payload":"' + b"x" * 17_000 + b'"}',
        headers={"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"},
    )
    assert raw.status == 413
    assert (await raw.json(content_type=None))["code"] == "payload_too_large"
