"""The landing page in a real headless Chromium (Debian's), as a phone camera opens it.

Screenshots of each page land in tests/artifacts/ (ignored by git) for a person to look at.
"""

from __future__ import annotations

import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.stack import Stack

CHROMIUM = shutil.which("chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}

pytestmark = pytest.mark.skipif(
    CHROMIUM is None,
    reason="Debian's chromium is not installed here (.ci/run installs it with apt-get)",
)


@pytest.fixture(scope="module")
async def browser() -> AsyncIterator[Any]:
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
            ],
        )
        try:
            yield launched
        finally:
            await launched.close()


async def _page(browser: Any, locale: str = "zh-CN", **context: Any) -> Any:
    made = await browser.new_context(locale=locale, **PHONE, **context)
    return await made.new_page()


def _shot(name: str) -> str:
    ARTIFACTS.mkdir(exist_ok=True)
    return str(ARTIFACTS / f"{name}.png")


async def _members(stack: Stack, group_id: str) -> list[str]:
    body = (await stack.redeemer.get(f"/v1/groups/{group_id}/members")).body
    return [m["user_id"] for m in body["members"]]


async def test_a_phone_opens_the_page_and_joins(stack: Stack, browser: Any) -> None:
    group = await stack.create_group("周末读书会", profile="wecom_internal", max_members=50)
    code = await stack.issue_code(group["group_id"])
    page = await _page(browser)
    response = await page.goto(code["payload"])
    assert response.status == 200
    assert await page.inner_text("h1") == "周末读书会"
    assert "0 / 50 成员" in await page.content()
    assert "有效期还剩 6 天" in await page.inner_text("main")
    assert await page.get_attribute("html", "lang") == "zh-CN"
    await page.screenshot(path=_shot("landing-form-zh"), full_page=True)
    await page.fill("#name", "小王")
    await page.click("#join")
    assert await page.inner_text("#result") == "你已加入群聊"
    assert "欢迎, 小王" in await page.inner_text("main")
    await page.screenshot(path=_shot("landing-joined-zh"), full_page=True)
    members = await _members(stack, group["group_id"])
    assert len(members) == 1 and members[0].startswith("anon-")
    await page.goto(code["payload"])  # the same person again: already a member
    await page.click("#join")
    assert await page.inner_text("#result") == "你已经是群成员"


async def test_english_with_an_invite_code(stack: Stack, browser: Any) -> None:
    group = await stack.create_group("Chess club", profile="wecom_internal")
    code = await stack.issue_code(
        group["group_id"], verification={"mode": "invite_code", "invite_code": "KNIGHT"}
    )
    page = await _page(browser, locale="en-US")
    await page.goto(code["payload"])
    assert await page.inner_text("label[for=invite_code]") == "Invite code"
    await page.fill("#name", "Ada")
    await page.fill("#invite_code", "BISHOP")
    await page.click("#join")
    assert "is not right" in await page.inner_text("[role=alert]")
    await page.screenshot(path=_shot("landing-wrong-code-en"), full_page=True)
    assert await page.input_value("#name") == "Ada"  # what was typed stays
    await page.fill("#invite_code", "KNIGHT")
    await page.click("#join")
    assert await page.inner_text("#result") == "You joined the group"


async def test_a_dead_code_shows_the_expired_page(stack: Stack, browser: Any) -> None:
    group = await stack.create_group("Old group", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"])
    await stack.issuer.post(f"/v1/codes/{code['code_id']}/revoke", {"reason": "old"})
    page = await _page(browser)
    for _ in range(100):
        response = await page.goto(code["payload"])
        if response.status == 410:
            break
        await page.wait_for_timeout(50)
    assert response.status == 410
    assert await page.inner_text("#result") == "该二维码已失效"
    await page.screenshot(path=_shot("landing-dead-zh"), full_page=True)
    bogus = await page.goto(code["payload"][:-6] + "AAAAAA")
    assert bogus.status == 400
    assert await page.inner_text("#result") == "无效的二维码"


async def test_a_dead_code_with_a_fallback_redirects(stack: Stack) -> None:
    group = await stack.create_group("Moved", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"], fallback_url="https://example.com/new")
    await stack.issuer.post(f"/v1/codes/{code['code_id']}/revoke", {"reason": "moved"})
    async with aiohttp.ClientSession() as session:
        for _ in range(100):
            async with session.get(code["payload"], allow_redirects=False) as response:
                if response.status == 302:
                    break
        assert response.status == 302
        assert response.headers["Location"] == "https://example.com/new"


async def test_geofenced_code_uses_the_browsers_location(stack: Stack, browser: Any) -> None:
    group = await stack.create_group("On site", profile="wecom_internal")
    code = await stack.issue_code(
        group["group_id"], geofence={"lat": 31.2304, "lon": 121.4737, "radius_m": 300}
    )
    inside = await _page(
        browser,
        geolocation={"latitude": 31.2305, "longitude": 121.4738, "accuracy": 20},
        permissions=["geolocation"],
    )
    await inside.goto(code["payload"])
    await inside.fill("#name", "现场")
    await inside.click("#locate")
    await inside.wait_for_function("document.getElementById('lat').value !== ''")
    await inside.click("#join")
    assert await inside.inner_text("#result") == "你已加入群聊"
    outside = await _page(
        browser, geolocation={"latitude": 39.9, "longitude": 116.4}, permissions=["geolocation"]
    )
    await outside.goto(code["payload"])
    await outside.fill("#name", "远方")
    await outside.click("#locate")
    await outside.wait_for_function("document.getElementById('lat').value !== ''")
    await outside.click("#join")
    assert "区域" in await outside.inner_text("[role=alert]")


async def test_the_plain_case_works_without_javascript(stack: Stack, browser: Any) -> None:
    group = await stack.create_group("No script", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"])
    page = await _page(browser, java_script_enabled=False)
    await page.goto(code["payload"])
    await page.fill("#name", "Plain")
    await page.click("#join")
    assert await page.inner_text("#result") == "你已加入群聊"


async def test_approval_codes_say_the_request_waits(stack: Stack, browser: Any) -> None:
    group = await stack.create_group("Reviewed", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"], verification={"mode": "approval"})
    page = await _page(browser)
    await page.goto(code["payload"])
    await page.fill("#name", "申请人")
    await page.click("#join")
    assert await page.inner_text("#result") == "已提交入群申请，请等待管理员审核"


async def test_a_forged_form_post_is_refused(stack: Stack) -> None:
    group = await stack.create_group("Forged", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"])
    async with (
        aiohttp.ClientSession() as cookieless,
        cookieless.post(code["payload"], data={"name": "x"}, allow_redirects=False) as post,
    ):
        assert post.status == 303  # no visitor cookie: back to the page first
    # The jar must accept cookies from 127.0.0.1, as a browser does.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as session:
        async with session.get(code["payload"]) as page:
            assert page.status == 200
            assert "default-src 'none'" in page.headers["Content-Security-Policy"]
        async with session.post(code["payload"], data={"name": "x", "csrf": "forged"}) as post:
            assert post.status == 403
            assert "text/html" in post.headers["Content-Type"]
    assert await _members(stack, group["group_id"]) == []
