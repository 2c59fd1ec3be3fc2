"""Issue 3: profiles and their bounds, and every code option's success and failure."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from tests.support.stack import Stack

WEEK = 7 * 86_400


async def _group(stack: Stack, profile: str, **fields: Any) -> dict[str, Any]:
    answer = await stack.issuer.post(
        "/v1/groups", {"name": f"{profile} group", "profile": profile, **fields}
    )
    assert answer.status == 201, answer.body
    return dict(answer.body)


async def _issue(stack: Stack, group: dict[str, Any], **fields: Any) -> Any:
    return await stack.issuer.post(f"/v1/groups/{group['group_id']}/codes", fields)


@pytest.mark.parametrize(
    ("profile", "members", "ttl", "scans", "daily", "mode"),
    [
        ("personal", 200, WEEK, 100, 200, "none"),
        ("wecom_external", 200, WEEK, 100, None, "none"),
        ("wecom_internal", 500, WEEK, None, None, "none"),
        ("qq", 2000, None, None, None, "none"),
        ("gov", 500, WEEK, 100, 200, "real_name"),
    ],
)
async def test_each_profile_sets_its_defaults(
    stack: Stack,
    profile: str,
    members: int,
    ttl: int | None,
    scans: int | None,
    daily: int | None,
    mode: str,
) -> None:
    group = await _group(stack, profile)
    assert (group["profile"], group["max_members"], group["timezone"]) == (
        profile,
        members,
        "Asia/Shanghai",
    )
    code = (await _issue(stack, group)).body
    lifetime = (
        None
        if code["expires_at"] is None
        else (
            datetime.fromisoformat(code["expires_at"]) - datetime.fromisoformat(code["issued_at"])
        ).total_seconds()
    )
    assert lifetime == ttl
    assert code["max_scans"] == scans
    assert code["daily_scan_limit"] == daily
    assert code["verification"]["mode"] == mode


@pytest.mark.parametrize(
    ("profile", "group_fields", "code_fields", "field"),
    [
        ("personal", {"max_members": 201}, None, "max_members"),
        ("qq", {"max_members": 2001}, None, None),  # above any profile: the schema refuses
        ("personal", {}, {"ttl_seconds": 3600}, "ttl_seconds"),
        ("personal", {}, {"ttl_seconds": None}, "ttl_seconds"),
        ("wecom_external", {}, {"ttl_seconds": 2 * WEEK}, "ttl_seconds"),
        ("gov", {}, {"ttl_seconds": 2 * WEEK}, "ttl_seconds"),
        ("personal", {}, {"max_scans": 101}, "max_scans"),
        ("personal", {}, {"max_scans": None}, "max_scans"),
        ("personal", {}, {"daily_scan_limit": 201}, "daily_scan_limit"),
        ("gov", {}, {"verification": {"mode": "none"}}, "verification.mode"),
        ("gov", {}, {"verification": {"mode": "invite_code"}}, "verification.mode"),
    ],
)
async def test_an_override_outside_the_bounds_is_a_422_naming_the_bound(
    stack: Stack,
    profile: str,
    group_fields: dict[str, Any],
    code_fields: dict[str, Any] | None,
    field: str | None,
) -> None:
    if code_fields is None:
        answer = await stack.issuer.post(
            "/v1/groups", {"name": "g", "profile": profile, **group_fields}
        )
    else:
        answer = await _issue(stack, await _group(stack, profile, **group_fields), **code_fields)
    assert answer.status == 422, answer.body
    if field is not None:
        assert answer.body["code"] == "outside_profile"
        assert answer.body["field"] == field
        assert field in answer.body["detail"] and profile in answer.body["detail"]


async def test_permanent_codes_where_the_profile_allows(stack: Stack) -> None:
    internal = await _group(stack, "wecom_internal")
    permanent = (await _issue(stack, internal, ttl_seconds=None)).body
    assert permanent["expires_at"] is None
    hour = (await _issue(stack, internal, ttl_seconds=3600)).body
    assert hour["expires_at"] is not None
    assert (await stack.scan(permanent["payload"], "p1")).status == 200


async def test_unknown_profile_and_timezone_are_refused(stack: Stack) -> None:
    assert (await stack.issuer.post("/v1/groups", {"name": "g", "profile": "wechat"})).status == 422
    answer = await stack.issuer.post("/v1/groups", {"name": "g", "timezone": "Mars/Olympus"})
    assert answer.status == 422
    assert "timezone" in answer.body["detail"]
    berlin = await _group(stack, "qq", timezone="Europe/Berlin")
    assert berlin["timezone"] == "Europe/Berlin"


async def test_every_option_is_kept_and_shown(stack: Stack) -> None:
    group = await _group(stack, "wecom_internal")
    start = (datetime.now(UTC) + timedelta(hours=1)).replace(microsecond=0)
    answer = await _issue(
        stack,
        group,
        ttl_seconds=86_400,
        not_before=start.isoformat(),
        max_scans=50,
        daily_scan_limit=10,
        verification={"mode": "invite_code", "invite_code": "GO2026"},
        ip_allowlist=["10.1.2.3/16", "2001:db8::/32", "10.1.0.0/16"],
        geofence={"lat": 31.2304, "lon": 121.4737, "radius_m": 500},
        bind_device=True,
        fallback_url="https://example.com/closed",
        channel="poster-metro",
        rotate=False,
    )
    assert answer.status == 201, answer.body
    code = answer.body
    assert code["status"] == "scheduled"
    assert datetime.fromisoformat(code["not_before"]) == start
    assert datetime.fromisoformat(code["expires_at"]) == start + timedelta(days=1)
    assert code["verification"] == {"mode": "invite_code", "invite_code": "GO2026"}
    assert code["ip_allowlist"] == ["10.1.0.0/16", "2001:db8::/32"]
    assert code["geofence"] == {"lat": 31.2304, "lon": 121.4737, "radius_m": 500}
    assert code["bind_device"] is True
    assert code["fallback_url"] == "https://example.com/closed"
    assert code["channel"] == "poster-metro"
    assert code["counters"] == {
        "scans_used": 0,
        "scans_today": 0,
        "scans_remaining": 50,
        "scans_today_remaining": 10,
        "scans_rejected": 0,
        "joins": 0,
        "last_scan_at": None,
    }
    generated = (await _issue(stack, group, verification={"mode": "invite_code"})).body
    assert len(generated["verification"]["invite_code"]) == 8  # shared/rules/invite_codes.py
    phones = (
        await _issue(
            stack,
            group,
            verification={"mode": "phone_last4", "phone_last4": ["1234", "5678", "1234"]},
        )
    ).body
    assert phones["verification"] == {"mode": "phone_last4", "phone_last4_count": 2}


@pytest.mark.parametrize(
    "fields",
    [
        {"ip_allowlist": ["not-a-network"]},
        {"ip_allowlist": ["10.0.0.0/33"]},
        {"geofence": {"lat": 91, "lon": 0, "radius_m": 100}},
        {"geofence": {"lat": 0, "lon": 0, "radius_m": 1}},
        {"fallback_url": "javascript:alert(1)"},
        {"channel": "x" * 65},
        {"not_before": "2026-01-01T00:00:00"},  # no time zone
        {"verification": {"mode": "none", "invite_code": "1234"}},
        {"verification": {"mode": "invite_code", "invite_code": "no spaces"}},
        {"verification": {"mode": "phone_last4", "phone_last4": ["12345"]}},
        {"max_scans": 0},
        {"ttl_seconds": 59},
        {"bind_device": "yes"},
    ],
)
async def test_a_bad_option_is_a_422_with_a_reason(stack: Stack, fields: dict[str, Any]) -> None:
    group = await _group(stack, "wecom_internal")
    answer = await _issue(stack, group, **fields)
    assert answer.status == 422, answer.body
    assert answer.body["code"] in ("invalid_request", "outside_profile")
    assert answer.body["detail"]


async def test_rotation_supersedes_the_groups_codes_at_once(stack: Stack) -> None:
    personal = await _group(stack, "personal")
    first = (await _issue(stack, personal)).body
    second = (await _issue(stack, personal)).body
    old = (await stack.issuer.get(f"/v1/codes/{first['code_id']}")).body
    assert old["status"] == "superseded"
    assert old["superseded_by"] == second["code_id"]
    refused = await stack.scan(first["payload"], "late")
    for _ in range(50):
        if refused.status != 200:
            break
        refused = await stack.scan(first["payload"], "late")
    assert (refused.status, refused.body["code"]) == (410, "code_superseded")
    assert (await stack.scan(second["payload"], "on-time")).status == 200

    external = await _group(stack, "wecom_external")
    a = (await _issue(stack, external)).body
    b = (await _issue(stack, external)).body
    assert (await stack.issuer.get(f"/v1/codes/{a['code_id']}")).body["status"] == "active"
    c = (await _issue(stack, external, rotate=True)).body
    for old_id in (a["code_id"], b["code_id"]):
        assert (await stack.issuer.get(f"/v1/codes/{old_id}")).body["status"] == "superseded"
    assert (await stack.issuer.get(f"/v1/codes/{c['code_id']}")).body["status"] == "active"


async def test_patch_changes_what_the_profile_allows(stack: Stack) -> None:
    internal = await _group(stack, "wecom_internal")
    code = (await _issue(stack, internal, ttl_seconds=3600, max_scans=5)).body
    later = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    patched = await stack.issuer.call(
        "PATCH",
        f"/v1/codes/{code['code_id']}",
        {
            "expires_at": later.isoformat(),
            "max_scans": 500,
            "fallback_url": "https://example.com/x",
            "channel": "renamed",
        },
    )
    assert patched.status == 200, patched.body
    assert datetime.fromisoformat(patched.body["expires_at"]) == later
    assert patched.body["max_scans"] == 500
    assert patched.body["channel"] == "renamed"
    forever = await stack.issuer.call("PATCH", f"/v1/codes/{code['code_id']}", {"expires_at": None})
    assert forever.body["expires_at"] is None
    past = await stack.issuer.call(
        "PATCH", f"/v1/codes/{code['code_id']}", {"expires_at": "2020-01-01T00:00:00Z"}
    )
    assert past.status == 422

    personal = await _group(stack, "personal")
    fixed = (await _issue(stack, personal)).body
    refused = await stack.issuer.call(
        "PATCH", f"/v1/codes/{fixed['code_id']}", {"expires_at": later.isoformat()}
    )
    assert (refused.status, refused.body["code"]) == (422, "outside_profile")
    too_many = await stack.issuer.call(
        "PATCH", f"/v1/codes/{fixed['code_id']}", {"max_scans": 1000}
    )
    assert (too_many.status, too_many.body["field"]) == (422, "max_scans")
    fewer = await stack.issuer.call("PATCH", f"/v1/codes/{fixed['code_id']}", {"max_scans": 10})
    assert fewer.body["max_scans"] == 10
    await stack.issuer.post(f"/v1/codes/{fixed['code_id']}/revoke", {"reason": "done"})
    dead = await stack.issuer.call("PATCH", f"/v1/codes/{fixed['code_id']}", {"max_scans": 20})
    assert (dead.status, dead.body["code"]) == (409, "code_not_changeable")
    unknown = await stack.issuer.call("PATCH", f"/v1/codes/{uuid.uuid4()}", {"max_scans": 20})
    assert unknown.status == 404


async def test_listing_filters_and_pages(stack: Stack) -> None:
    group = await _group(stack, "wecom_internal")
    ids = [
        (await _issue(stack, group, channel="flyer" if i % 2 else "web")).body["code_id"]
        for i in range(5)
    ]
    await stack.issuer.post(f"/v1/codes/{ids[0]}/revoke", {"reason": "x"})
    seen: list[str] = []
    cursor = None
    while True:
        path = f"/v1/groups/{group['group_id']}/codes?limit=2"
        page = (await stack.issuer.get(path + (f"&cursor={cursor}" if cursor else ""))).body
        seen += [c["code_id"] for c in page["codes"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(ids))
    flyers = (await stack.issuer.get(f"/v1/codes?group_id={group['group_id']}&channel=flyer")).body
    assert {c["code_id"] for c in flyers["codes"]} == {ids[1], ids[3]}
    revoked = (
        await stack.issuer.get(f"/v1/codes?group_id={group['group_id']}&status=revoked")
    ).body
    assert [c["code_id"] for c in revoked["codes"]] == [ids[0]]
    bad = await stack.issuer.get("/v1/codes?status=sleeping")
    assert bad.status == 422
    bad_cursor = await stack.issuer.get("/v1/codes?cursor=garbage")
    assert bad_cursor.status == 422
    groups = (await stack.issuer.get("/v1/groups?limit=1")).body
    assert len(groups["groups"]) == 1 and groups["next_cursor"]
