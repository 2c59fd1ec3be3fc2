"""What the anonymous landing page lets a visitor guess: phone digits nobody can check are
not asked for, wrong answers are counted per address as well as per visitor (a new cookie
is a new visitor), and the invite code cannot be read back from the log."""

from __future__ import annotations

import hashlib
import re
import uuid
from typing import Any

import aiohttp
import msgspec

from shared.rules.invite_codes import ALPHABET, GENERATED_LENGTH
from tests.support.stack import Stack


async def _visit(stack: Stack, payload: str, address: str, **form: str) -> tuple[int, str]:
    """A new visitor (a fresh cookie jar): open the page, then send its form."""
    path = "/j/" + payload.rsplit("/j/", 1)[1]
    headers = {"X-Forwarded-For": address, "Accept-Language": "en"}
    # unsafe: the page is served from an IP address, whose cookies aiohttp drops by default
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as visitor:
        async with visitor.get(stack.redeemer.base + path, headers=headers) as page:
            html = await page.text()
            if page.status != 200:
                return page.status, html
        csrf = re.search(r'name="csrf" value="([^"]+)"', html)
        assert csrf is not None, html
        sent = {"csrf": csrf.group(1), "name": "Visitor", **form}
        async with visitor.post(
            stack.redeemer.base + path, data=sent, headers=headers, allow_redirects=False
        ) as answer:
            return answer.status, await answer.text()


async def _code(stack: Stack, **fields: Any) -> dict[str, Any]:
    group = await stack.create_group(f"g-{uuid.uuid4().hex[:6]}", profile="wecom_internal")
    return await stack.issue_code(group["group_id"], **fields)


async def test_phone_digits_without_a_list_are_not_asked_on_the_page(stack: Stack) -> None:
    code = await _code(stack, verification={"mode": "phone_last4"})
    status, html = await _visit(stack, code["payload"], "198.51.100.10")
    assert status == 403 and "open it in its app" in html
    assert 'name="phone_last4"' not in html
    # Through the API the platform vouches for the digits, as before.
    assert (await stack.scan(code["payload"], "app-user", phone_last4="0000")).status == 200
    listed = await _code(stack, verification={"mode": "phone_last4", "phone_last4": ["1234"]})
    status, _ = await _visit(stack, listed["payload"], "198.51.100.11", phone_last4="1234")
    assert status == 201


async def test_wrong_answers_count_per_address_whatever_the_cookie(stack: Stack) -> None:
    code = await _code(stack, verification={"mode": "invite_code", "invite_code": "Right123"})
    statuses = [
        (await _visit(stack, code["payload"], "203.0.113.50", invite_code=f"W{i:05d}"))[0]
        for i in range(21)
    ]
    assert statuses == [403] * 20 + [429]  # 20 wrong answers an address, then locked
    status, html = await _visit(stack, code["payload"], "203.0.113.50", invite_code="Right123")
    assert status == 429 and "try again later" in html
    # Another address, and the right answer in any case, still get in.
    status, _ = await _visit(stack, code["payload"], "203.0.113.51", invite_code="rIGHT123")
    assert status == 201


async def test_the_log_does_not_give_the_invite_code_away(stack: Stack) -> None:
    code = await _code(stack, verification={"mode": "invite_code"})
    answer = code["verification"]["invite_code"]
    assert len(answer) == GENERATED_LENGTH and set(answer) <= set(ALPHABET)
    await stack.quiet()
    found = None
    for partition in range(stack.settings.partitions):
        page = await stack.issuer.get(
            f"/v1/log?partition={partition}&limit=1000", key=stack.settings.log_token
        )
        for item in page.body["events"]:
            event = item["event"]
            if event["type"] == "CodeIssued" and event["data"]["code_id"] == code["code_id"]:
                found = event["data"]["verification"]["invite_code_hash"]
    assert found is not None and found.startswith("hmac-sha256:")
    code_id = uuid.UUID(code["code_id"])
    assert hashlib.sha256(code_id.bytes + answer.encode()).hexdigest() not in found
    assert answer not in msgspec.json.encode(found).decode()
    scanned = await stack.scan(code["payload"], "typist", invite_code=f"  {answer.lower()} ")
    assert scanned.status == 200, scanned.body
