"""Issue 3: tenant isolation on every route, API keys and scopes, idempotency, signing-key
rotation, images and posters, and the OpenAPI document."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from typing import Any

import pypdfium2
import zxingcpp
from openapi_spec_validator import validate
from PIL import Image

from tests.support.stack import Client, Stack

# Only QR codes: a poster's or a PDF's pixels can pass for a 1D barcode now and then
# (seen once: "C5/C" read beside the QR code of a PDF page).
QR = zxingcpp.BarcodeFormat.QRCode


async def _setup(stack: Stack) -> dict[str, str]:
    group = await stack.create_group("isolated", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"])
    live = await stack.issuer.post(
        "/v1/live-codes", {"name": "live", "group_ids": [group["group_id"]]}
    )
    assert live.status == 201, live.body
    key = await stack.issuer.post("/v1/api-keys", {"name": "k", "scopes": ["issue"]})
    return {
        "group_id": group["group_id"],
        "code_id": code["code_id"],
        "live_code_id": live.body["live_code_id"],
        "key_id": key.body["key_id"],
        "kind": "png",
        "request_id": str(uuid.uuid4()),
        "user_id": "alice",
    }


def _paths(spec: dict[str, Any], ids: dict[str, str]) -> list[tuple[str, str]]:
    routes = []
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            if "security" not in operation or operation.get("x-qunma-scope") == "log":
                continue
            routes.append((method.upper(), re.sub(r"{(\w+)}", lambda m: ids[m.group(1)], path)))
    return routes


async def test_another_tenant_gets_404_on_every_route(stack: Stack) -> None:
    ids = await _setup(stack)
    other_issuer, other_redeemer, _ = await stack.new_tenant("intruder")
    for client, other in ((stack.issuer, other_issuer), (stack.redeemer, other_redeemer)):
        spec = (await client.get("/openapi.json", key="")).body
        checked = 0
        for method, path in _paths(spec, ids):
            if "{" in path or not any(v in path for v in ids.values()):
                continue  # collection routes: nothing of the owner's to see
            body = {} if method in ("POST", "PATCH") else None
            answer = await other.call(method, path, body)
            assert answer.status == 404, (method, path, answer.status, answer.body)
            checked += 1
        assert checked >= 8 if client is stack.issuer else checked >= 5
    # and the collections do not show the owner's resources
    listed = (await other_issuer.get("/v1/codes")).body
    assert listed["codes"] == []
    assert (await other_issuer.get("/v1/groups")).body["groups"] == []


async def test_scopes_and_key_lifecycle(stack: Stack) -> None:
    made = await stack.issuer.post("/v1/api-keys", {"name": "reader", "scopes": ["redeem"]})
    assert made.status == 201
    secret = made.body["api_key"]
    assert secret.startswith("qk_")
    listed = (await stack.issuer.get("/v1/api-keys")).body["api_keys"]
    assert made.body["key_id"] in {k["key_id"] for k in listed}
    assert all("api_key" not in k for k in listed)
    forbidden = await stack.issuer.post("/v1/groups", {"name": "g"}, key=secret)
    assert (forbidden.status, forbidden.body["code"]) == (403, "forbidden")
    admin_only = await stack.issuer.get("/v1/api-keys", key=secret)
    assert admin_only.status == 403
    async with asyncio.timeout(10):  # the redeemer learns keys from the log
        while (
            await stack.redeemer.get(f"/v1/groups/{uuid.uuid4()}/members", key=secret)
        ).status == 401:
            await asyncio.sleep(0.05)
    gone = await stack.issuer.call("DELETE", f"/v1/api-keys/{made.body['key_id']}")
    assert gone.status == 204
    assert (await stack.issuer.get("/v1/groups", key=secret)).status == 401
    async with asyncio.timeout(10):
        while (
            await stack.redeemer.get(f"/v1/groups/{uuid.uuid4()}/members", key=secret)
        ).status != 401:
            await asyncio.sleep(0.05)
    again = await stack.issuer.call("DELETE", f"/v1/api-keys/{made.body['key_id']}")
    assert again.status == 204  # revoking a revoked key changes nothing
    assert (await stack.issuer.call("DELETE", f"/v1/api-keys/{uuid.uuid4()}")).status == 404
    bad = await stack.issuer.post("/v1/api-keys", {"name": "x", "scopes": ["everything"]})
    assert bad.status == 422


async def test_idempotency_key_returns_the_first_response(stack: Stack) -> None:
    key = f"order-{uuid.uuid4()}"
    headers = {"Idempotency-Key": key}
    first = await stack.issuer.post("/v1/groups", {"name": "once"}, headers=headers)
    again = await stack.issuer.post("/v1/groups", {"name": "once"}, headers=headers)
    assert first.status == again.status == 201
    assert again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.headers["Location"] == first.headers["Location"]
    other = await stack.issuer.post("/v1/groups", {"name": "twice"}, headers=headers)
    assert (other.status, other.body["code"]) == (422, "idempotency_key_reused")
    # An error is kept too: the same bad request gets the same answer.
    bad = {"Idempotency-Key": f"bad-{uuid.uuid4()}"}
    one = await stack.issuer.post("/v1/groups", {"name": ""}, headers=bad)
    two = await stack.issuer.post("/v1/groups", {"name": ""}, headers=bad)
    assert one.status == two.status == 422
    # The other tenant's identical key is its own.
    other_issuer, _, _ = await stack.new_tenant("idem-other")
    theirs = await other_issuer.post("/v1/groups", {"name": "once"}, headers=headers)
    assert theirs.status == 201 and theirs.body["group_id"] != first.body["group_id"]
    redeemer = await stack.redeemer.post(
        "/v1/joins", {"join_token": "x", "user_id": "u"}, headers={"Idempotency-Key": "j1"}
    )
    replay = await stack.redeemer.post(
        "/v1/joins", {"join_token": "x", "user_id": "u"}, headers={"Idempotency-Key": "j1"}
    )
    assert redeemer.status == replay.status == 400


async def test_codes_of_both_keys_scan_after_rotation(stack: Stack) -> None:
    issuer, redeemer, _ = await stack.new_tenant("rotating")
    group = (await issuer.post("/v1/groups", {"name": "rot", "profile": "wecom_internal"})).body
    old = (await issuer.post(f"/v1/groups/{group['group_id']}/codes", {})).body
    rotated = await issuer.post("/v1/signing-keys/rotate")
    assert rotated.status == 201
    assert rotated.body["status"] == "active" and rotated.body["key_id"] != old["key_id"]
    new = (await issuer.post(f"/v1/groups/{group['group_id']}/codes", {})).body
    assert new["key_id"] == rotated.body["key_id"]
    for code, user in ((old, "u-old"), (new, "u-new")):
        answer = await redeemer.post("/v1/scans", {"payload": code["payload"], "user_id": user})
        assert answer.status == 200, answer.body
    kids = {k["kid"] for k in (await issuer.get("/.well-known/jwks.json", key="")).body["keys"]}
    assert {old["key_id"], new["key_id"]} <= kids
    keys = {k["key_id"]: k for k in (await issuer.get("/v1/signing-keys")).body["signing_keys"]}
    assert keys[old["key_id"]]["status"] == "retired" and keys[old["key_id"]]["needed"]
    await issuer.post(f"/v1/codes/{old['code_id']}/revoke", {"reason": "rotated out"})
    keys = {k["key_id"]: k for k in (await issuer.get("/v1/signing-keys")).body["signing_keys"]}
    assert not keys[old["key_id"]]["needed"]
    kids = {k["kid"] for k in (await issuer.get("/.well-known/jwks.json", key="")).body["keys"]}
    assert old["key_id"] not in kids and new["key_id"] in kids


def _decode_png(data: bytes) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(Image.open(io.BytesIO(data)), formats=QR)]


def _pdf_page(data: bytes) -> tuple[Image.Image, str]:
    pdf = pypdfium2.PdfDocument(data)
    page = pdf[0]
    image = page.render(scale=2).to_pil()
    text = page.get_textpage().get_text_range()
    return image, text


async def test_images_in_every_format_decode_to_the_payload(stack: Stack) -> None:
    group = await stack.create_group("图书俱乐部 Book club", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"], channel="metro-line-2")
    base = f"/v1/codes/{code['code_id']}"
    png = await stack.issuer.get(f"{base}/qr.png?scale=4&border=2&dark=%23112233&error=H")
    assert png.status == 200 and png.headers["Content-Type"] == "image/png"
    assert _decode_png(png.raw) == [code["payload"]]
    assert (
        await stack.issuer.get(
            f"{base}/qr.png?scale=4&border=2&dark=%23112233&error=H",
            headers={"If-None-Match": png.headers["ETag"]},
        )
    ).status == 304
    svg = await stack.issuer.get(f"{base}/qr.svg")
    assert svg.headers["Content-Type"].startswith("image/svg+xml") and b"<svg" in svg.raw
    eps = await stack.issuer.get(f"{base}/qr.eps")
    assert eps.raw.startswith(b"%!PS-Adobe")
    pdf = await stack.issuer.get(f"{base}/qr.pdf")
    assert pdf.headers["Content-Type"] == "application/pdf"
    assert _decode_png_image(_pdf_page(pdf.raw)[0]) == [code["payload"]]
    poster = await stack.issuer.get(f"{base}/poster.pdf")
    assert poster.status == 200
    image, text = _pdf_page(poster.raw)
    assert _decode_png_image(image) == [code["payload"]]
    assert "图书俱乐部" in text and "metro-line-2" in text and "有效期至" in text
    again = await stack.issuer.get(f"{base}/poster.pdf")
    assert again.headers["ETag"] == poster.headers["ETag"]
    for bad in ("scale=0", "border=99", "dark=red", "error=Z", "size=3"):
        assert (await stack.issuer.get(f"{base}/qr.png?{bad}")).status == 422, bad
    assert (await stack.issuer.get(f"{base}/qr.gif")).status == 404


def _decode_png_image(image: Image.Image) -> list[str]:
    return [r.text for r in zxingcpp.read_barcodes(image, formats=QR)]


async def test_openapi_documents_validate_and_match_the_routes(stack: Stack) -> None:
    for client in (stack.issuer, stack.redeemer):
        spec = (await client.get("/openapi.json", key="")).body
        validate(spec)
        assert spec["openapi"] == "3.1.0"
        documented = {(m.upper(), p) for p, ops in spec["paths"].items() for m in ops}
        assert ("GET", "/healthz") in documented
        # Every documented body schema refuses what it does not declare.
        for path, operations in spec["paths"].items():
            for method, operation in operations.items():
                if "requestBody" not in operation or "{" in path:
                    continue
                answer = await client.call(method.upper(), path, {"surely_not_a_field": 1})
                assert answer.status == 422, (method, path, answer.body)
    issuer_paths = (await stack.issuer.get("/openapi.json", key="")).body["paths"]
    for path in (
        "/v1/groups",
        "/v1/codes/{code_id}",
        "/v1/live-codes",
        "/v1/api-keys",
        "/v1/signing-keys/rotate",
        "/.well-known/jwks.json",
        "/v1/log",
        "/v1/codes/{code_id}/qr.{kind}",
        "/v1/codes/{code_id}/poster.pdf",
    ):
        assert path in issuer_paths, path
    scopes = {op.get("x-qunma-scope") for ops in issuer_paths.values() for op in ops.values()}
    assert {"issue", "admin", "log"} <= scopes


async def test_live_code_configuration(stack: Stack) -> None:
    a = await stack.create_group("A", profile="wecom_internal")
    b = await stack.create_group("B", profile="wecom_internal")
    other_issuer, _, _ = await stack.new_tenant("live-other")
    theirs = (await other_issuer.post("/v1/groups", {"name": "theirs"})).body
    refused = await stack.issuer.post(
        "/v1/live-codes", {"name": "x", "group_ids": [theirs["group_id"]]}
    )
    assert refused.status == 422 and theirs["group_id"] in refused.body["detail"]
    for bad in (
        {"name": "x", "group_ids": []},
        {"name": "x", "group_ids": [a["group_id"], a["group_id"]]},
        {"name": "x", "group_ids": [a["group_id"]], "strategy": "by_attribute"},
        {"name": "x", "group_ids": [a["group_id"]], "strategy": "random"},
        {
            "name": "x",
            "group_ids": [a["group_id"]],
            "rules": [{"match": {"city": ["SH"]}, "group_id": a["group_id"]}],
        },
        {
            "name": "x",
            "group_ids": [a["group_id"]],
            "strategy": "by_attribute",
            "rules": [{"match": {"city": ["SH"]}, "group_id": b["group_id"]}],
        },
    ):
        assert (await stack.issuer.post("/v1/live-codes", bad)).status == 422, bad
    made = await stack.issuer.post(
        "/v1/live-codes",
        {
            "name": "Spring campaign",
            "group_ids": [a["group_id"]],
            "strategy": "fill_in_order",
            "switch_at": 150,
            "auto_create": {"base_name": "Spring", "max_groups": 5},
            "fallback_url": "https://example.com/full",
            "channel": "spring",
        },
    )
    assert made.status == 201, made.body
    live = made.body
    assert live["auto_create"] == {
        "base_name": "Spring",
        "max_members": 500,
        "max_groups": 5,
        "profile": "wecom_internal",
    }
    assert [g["group_id"] for g in live["groups"]] == [a["group_id"]]
    patched = await stack.issuer.call(
        "PATCH",
        f"/v1/live-codes/{live['live_code_id']}",
        {"add_group_ids": [b["group_id"]], "switch_at": 100},
    )
    assert patched.status == 200
    assert patched.body["payload"] == live["payload"]  # one QR that never changes
    assert [g["group_id"] for g in patched.body["groups"]] == [a["group_id"], b["group_id"]]
    removed = await stack.issuer.call(
        "PATCH",
        f"/v1/live-codes/{live['live_code_id']}",
        {"remove_group_ids": [a["group_id"], b["group_id"]]},
    )
    assert removed.status == 422  # at least one group
    png = await stack.issuer.get(f"/v1/live-codes/{live['live_code_id']}/qr.png")
    assert _decode_png(png.raw) == [live["payload"]]
    poster = await stack.issuer.get(f"/v1/live-codes/{live['live_code_id']}/poster.pdf")
    assert "Spring campaign" in _pdf_page(poster.raw)[1]
    revoked = await stack.issuer.post(
        f"/v1/live-codes/{live['live_code_id']}/revoke", {"reason": "over"}
    )
    assert revoked.body["status"] == "revoked"
    late = await stack.issuer.call("PATCH", f"/v1/live-codes/{live['live_code_id']}", {"name": "y"})
    assert (late.status, late.body["code"]) == (409, "code_not_changeable")
    listed = (await stack.issuer.get("/v1/live-codes")).body["live_codes"]
    assert live["live_code_id"] in {item["live_code_id"] for item in listed}


_ = Client
