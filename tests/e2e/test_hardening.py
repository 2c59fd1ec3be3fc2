"""The smaller trust boundaries: what the log API takes, fallback URLs, the landing page's
headers and cookies, and the index group statistics read by."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import asyncpg

from services.redeemer.api.stats import facts_of
from tests.support.stack import Stack


async def test_a_tree_size_that_is_not_plain_digits_is_a_422(stack: Stack) -> None:
    for client in (stack.issuer, stack.redeemer):
        for bad in ("%C2%B2", "9" * 5000, "-1", "0x10", "1.0"):
            answer = await client.get(
                f"/v1/log/consistency?from={bad}&partition=0", key=stack.settings.log_token
            )
            assert answer.status == 422, (bad[:10], answer.status, answer.body)


async def test_fallback_urls_carry_no_credentials_and_stay_on_the_tenants_domains(
    stack: Stack,
) -> None:
    issuer, _, _ = await stack.new_tenant("fallbacks")
    group = (await issuer.post("/v1/groups", {"name": "fb", "profile": "wecom_internal"})).body
    codes = f"/v1/groups/{group['group_id']}/codes"
    tricked = await issuer.post(codes, {"fallback_url": "https://shop.example.com@evil.example/"})
    assert (tricked.status, tricked.body["code"]) == (422, "invalid_request"), tricked.body
    assert "user name or password" in tricked.body["detail"]
    assert (await issuer.post(codes, {"fallback_url": "https://anywhere.example/"})).status == 201
    settings = await issuer.call(
        "PATCH", "/v1/tenant", {"fallback_domains": ["Example.COM.", "shop.example.org"]}
    )
    assert settings.status == 200, settings.body
    assert settings.body["fallback_domains"] == ["example.com", "shop.example.org"]
    assert (await issuer.get("/v1/tenant")).body == settings.body
    outside = await issuer.post(codes, {"fallback_url": "https://evil.example/"})
    assert outside.status == 422 and "fallback domains" in outside.body["detail"]
    for fine in ("https://example.com/new", "https://m.example.com/x", "http://shop.example.org"):
        assert (await issuer.post(codes, {"fallback_url": fine})).status == 201, fine
    code = (await issuer.post(codes, {})).body
    amended = await issuer.call(
        "PATCH", f"/v1/codes/{code['code_id']}", {"fallback_url": "https://notexample.com/"}
    )
    assert amended.status == 422, amended.body
    live = await issuer.post(
        "/v1/live-codes",
        {"name": "l", "group_ids": [group["group_id"]], "fallback_url": "https://x.evil.example"},
    )
    assert live.status == 422, live.body
    cleared = await issuer.call("PATCH", "/v1/tenant", {"fallback_domains": None})
    assert cleared.body["fallback_domains"] is None
    assert (await issuer.post(codes, {"fallback_url": "https://evil.example/"})).status == 201


async def test_the_landing_page_headers_cookie_and_scripts(stack: Stack) -> None:
    group = await stack.create_group("<script>alert(1)</script>", profile="wecom_internal")
    fenced = await stack.issue_code(
        group["group_id"], geofence={"lat": 31.23, "lon": 121.47, "radius_m": 500}
    )
    path = "/j/" + fenced["payload"].rsplit("/j/", 1)[1]
    plain = await stack.redeemer.get(path)
    assert plain.status == 200
    assert plain.headers["X-Content-Type-Options"] == "nosniff"
    html = plain.raw.decode()
    nonce = plain.headers["Content-Security-Policy"].split("'nonce-")[1].split("'")[0]
    assert html.count("<script") == 1 and html.count(f'nonce="{nonce}"') == 1
    assert "<script>alert" not in html  # the group's name is text, never markup
    assert "Secure" not in plain.headers["Set-Cookie"]
    # Through a trusted proxy that terminated https, the visitor's cookie is Secure.
    proxied = await stack.redeemer.get(path, headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in proxied.headers["Set-Cookie"]


async def test_group_statistics_read_the_groups_facts_by_index(stack: Stack) -> None:
    conn = await asyncpg.connect(stack.env["QUNMA_REDEEMER_DATABASE_URL"])
    try:
        await conn.execute("SET enable_seqscan = off")
        plan = await conn.fetchval(
            f"EXPLAIN (FORMAT JSON) SELECT count(*) FROM scan_facts WHERE {facts_of('group_id')}",
            uuid.uuid4(),
            datetime.now(UTC),
        )
    finally:
        await conn.close()
    text = json.dumps(json.loads(plan))
    assert "scan_facts_group" in text and '"Index Cond"' in text, text
    assert "at >=" in text.split('"Index Cond"')[1]
