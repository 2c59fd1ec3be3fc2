"""End to end on started services: issue, scan, join, revoke; caps; auth; images; the log."""

from __future__ import annotations

import asyncio
import io
import uuid

import zxingcpp
from PIL import Image

from tests.support.stack import Stack


async def test_issue_scan_join_revoke_then_scan_is_code_revoked(stack: Stack) -> None:
    group = await stack.create_group("Book club", max_members=50)
    code = await stack.issue_code(group["group_id"])
    assert code["status"] == "active"
    assert code["payload"].startswith(stack.settings.public_url + "/j/")

    scanned = await stack.scan(code["payload"], "alice")
    assert scanned.status == 200, scanned.body
    assert scanned.body["group"] == {
        "group_id": group["group_id"],
        "name": "Book club",
        "member_count": 0,
        "max_members": 50,
    }
    joined = await stack.join(scanned.body["join_token"], "alice")
    assert joined.status == 201, joined.body
    assert joined.body["user_id"] == "alice"
    assert joined.body["group_id"] == group["group_id"]

    members = await stack.redeemer.get(f"/v1/groups/{group['group_id']}/members")
    assert members.status == 200
    assert [m["user_id"] for m in members.body["members"]] == ["alice"]
    assert members.body["member_count"] == 1

    revoked = await stack.issuer.post(f"/v1/codes/{code['code_id']}/revoke", {"reason": "leaked"})
    assert revoked.status == 200
    assert revoked.body["status"] == "revoked"
    assert revoked.body["revoke_reason"] == "leaked"

    async with asyncio.timeout(10):  # the revocation travels through the log
        while (answer := await stack.scan(code["payload"], "bob")).status == 200:
            await asyncio.sleep(0.02)
    assert answer.status == 410
    assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert answer.body["code"] == "code_revoked"
    assert answer.body["message_zh"]

    fetched = await stack.issuer.get(f"/v1/codes/{code['code_id']}")
    assert fetched.body["status"] == "revoked"


async def test_the_fourth_scan_of_a_three_scan_code_is_refused(stack: Stack) -> None:
    group = await stack.create_group()
    code = await stack.issue_code(group["group_id"], max_scans=3)
    statuses = [(await stack.scan(code["payload"], f"user-{i}")).status for i in range(3)]
    assert statuses == [200, 200, 200]
    fourth = await stack.scan(code["payload"], "user-4")
    assert fourth.status == 429
    assert fourth.body["code"] == "scan_limit_reached"


async def test_joining_twice_and_by_someone_else(stack: Stack) -> None:
    group = await stack.create_group()
    code = await stack.issue_code(group["group_id"])
    token = (await stack.scan(code["payload"], "carol")).body["join_token"]
    mismatch = await stack.join(token, "mallory")
    assert (mismatch.status, mismatch.body["code"]) == (403, "token_mismatch")
    first = await stack.join(token, "carol")
    assert first.status == 201
    again = await stack.join(token, "carol")
    assert again.status == 200
    assert again.body == first.body
    stolen = await stack.join(token, "mallory")
    assert (stolen.status, stolen.body["code"]) == (409, "token_used")
    unknown = await stack.join("not-a-token", "carol")
    assert (unknown.status, unknown.body["code"]) == (400, "invalid_token")
    member_again = await stack.scan(code["payload"], "carol")
    assert member_again.status == 200
    assert member_again.body["status"] == "member"
    assert "join_token" not in member_again.body


async def test_a_full_group_refuses_and_counts_nothing(stack: Stack) -> None:
    group = await stack.create_group(max_members=1)
    code = await stack.issue_code(group["group_id"], max_scans=10)
    assert (await stack.scan(code["payload"], "first")).status == 200
    full = await stack.scan(code["payload"], "second")
    assert (full.status, full.body["code"]) == (409, "group_full")


async def test_bad_codes_are_invalid(stack: Stack) -> None:
    group = await stack.create_group()
    code = await stack.issue_code(group["group_id"])
    payload = code["payload"]
    tampered = payload[:-3] + ("AAA" if not payload.endswith("AAA") else "BBB")
    for bad in ["hello", "https://example.com/j/xyz", tampered]:
        answer = await stack.scan(bad, "eve")
        assert (answer.status, answer.body["code"]) == (400, "invalid_code"), bad


async def test_every_v1_call_needs_a_key(stack: Stack) -> None:
    for client in (stack.issuer, stack.redeemer):
        for key in ("", "qk_unknown"):
            answer = await client.get("/v1/groups/" + str(uuid.uuid4()), key=key)
            assert answer.status == 401
            assert answer.body["code"] == "unauthorized"
            assert answer.headers["Content-Type"].startswith("application/problem+json")
    assert (await stack.issuer.get("/healthz", key="")).status == 200


async def test_bad_input_is_a_clear_4xx(stack: Stack) -> None:
    checks = [
        (await stack.issuer.post("/v1/groups", {"name": ""}), 422),
        (await stack.issuer.post("/v1/groups", {"name": "x", "max_members": 0}), 422),
        (await stack.issuer.post("/v1/groups", {"name": "x", "colour": "red"}), 422),
        (await stack.issuer.post("/v1/groups", {"name": "x", "max_members": "ten"}), 422),
        (await stack.issuer.post(f"/v1/groups/{uuid.uuid4()}/codes", {}), 404),
        (await stack.issuer.get("/v1/codes/not-a-uuid"), 404),
        (await stack.issuer.call("DELETE", "/v1/groups"), 405),
        (await stack.redeemer.post("/v1/scans", {"payload": "x"}), 422),
    ]
    for answer, status in checks:
        assert answer.status == status, answer.body
        assert answer.body["code"]
        assert answer.body["detail"]
    raw = await stack.issuer.session.post(
        stack.issuer.base + "/v1/groups",
        data=b"{not json",
        headers={"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"},
    )
    assert raw.status == 400
    assert (await raw.json(content_type=None))["code"] == "malformed_json"
    big = await stack.issuer.session.post(
        stack.issuer.base + "/v1/groups",
        data=b'{"name":"' + b"x" * 20000 + b'"}',
        headers={"Authorization": f"Bearer {stack.api_key}", "Content-Type": "application/json"},
    )
    assert big.status == 413


async def test_qr_images_decode_to_the_payload(stack: Stack) -> None:
    group = await stack.create_group()
    code = await stack.issue_code(group["group_id"])
    png = await stack.issuer.get(code["links"]["qr_png"])
    assert png.status == 200
    assert png.headers["Content-Type"] == "image/png"
    decoded = zxingcpp.read_barcodes(
        Image.open(io.BytesIO(png.raw)), formats=zxingcpp.BarcodeFormat.QRCode
    )
    assert [d.text for d in decoded] == [code["payload"]]
    again = await stack.issuer.get(
        code["links"]["qr_png"], headers={"If-None-Match": png.headers["ETag"]}
    )
    assert again.status == 304
    svg = await stack.issuer.get(code["links"]["qr_svg"])
    assert svg.headers["Content-Type"].startswith("image/svg+xml")
    assert svg.raw.lstrip().startswith(b"<?xml") or b"<svg" in svg.raw[:200]


async def test_jwks_lists_the_signing_key_and_the_log_is_readable(stack: Stack) -> None:
    jwks = await stack.issuer.get("/.well-known/jwks.json", key="")
    assert jwks.status == 200
    assert all(k["kty"] == "OKP" and k["crv"] == "Ed25519" for k in jwks.body["keys"])
    forbidden = await stack.issuer.get("/v1/log?partition=0")
    assert forbidden.status == 403
    log = await stack.issuer.get(
        "/v1/log?partition=0&after=0&limit=5", key=stack.settings.log_token
    )
    assert log.status == 200
    assert log.body["log"] == stack.settings.issuer_topic
    positions = [e["position"] for e in log.body["events"]]
    assert positions == list(range(1, len(positions) + 1))
    bad = await stack.issuer.get("/v1/log?partition=99", key=stack.settings.log_token)
    assert bad.status == 422
