"""Bad input gets a 4xx problem with a reason, never a 5xx, and stored data survives it.

Every operation of both services' `/openapi.json` is sent what a careless or hostile client
sends: bodies that are not JSON or not objects, every declared field with a value of the
wrong type, out of range, too long or holding a NUL character (which PostgreSQL's text
refuses), path identifiers that are not ids or belong to nobody, and query parameters of the
wrong shape. The operations are taken from the spec, so a new endpoint is covered the day it
is declared.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from typing import Any

import aiohttp
from yarl import URL

from tests.support.stack import Client, Stack

NUL = "a\u0000b"
PATH_VALUES = (
    "not-an-id",
    "ffffffff-ffff-ffff-ffff-ffffffffffff",
    "%00",
    "%E4%B8%AD%E6%96%87",
    "9" * 300,
)
QUERY_VALUES = ("garbage", "-1", "1e309", "9" * 40, "%00", "%FF", "2026-13-45T99:00:00Z")
RAW_BODIES = (b"not json", b"[]", b"null", b'{"a":', b'"text"', b"\xff\xfe", b"{}")


def _wrong_values(schema: dict[str, Any]) -> list[Any]:
    kind = schema.get("type")
    kinds = set(kind) if isinstance(kind, list) else {kind} if kind else set()
    values: list[Any] = [{"nested": True}]
    if "string" in kinds:
        values += [12345, NUL, "x" * 20_000, ""]
    if "integer" in kinds or "number" in kinds:
        values += ["7", 1e30, 2**70, -(2**70), -1, 0.5]
    if "boolean" in kinds:
        values += ["yes", 1]
    if "array" in kinds:
        values += ["not a list", [None], [NUL], list(range(500))]
    if "object" in kinds or "$ref" in schema or "anyOf" in schema:
        values += [[], "x", {"lat": "north", "lon": None, "mode": NUL}]
    return values


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    if "anyOf" in schema:  # `X | None`: the non-null part
        for option in schema["anyOf"]:
            if option.get("type") != "null":
                return _resolve(option, spec)
    return schema


def _bodies(operation: dict[str, Any], spec: dict[str, Any]) -> Iterator[bytes]:
    yield from RAW_BODIES
    content = operation.get("requestBody", {}).get("content", {})
    if "application/json" not in content:
        return
    schema = _resolve(content["application/json"]["schema"], spec)
    properties = schema.get("properties", {})
    yield json.dumps({"unknown_field": NUL}).encode()
    # every text field holding a NUL at once, beside each field in turn set to null
    nul_texts = {k: NUL for k, s in properties.items() if _resolve(s, spec).get("type") == "string"}
    for name, sub in properties.items():
        for value in _wrong_values(_resolve(sub, spec) | sub):
            yield json.dumps({name: value}).encode()
        yield json.dumps({**nul_texts, name: None}).encode()


def _requests(spec: dict[str, Any], ids: dict[str, str]) -> Iterator[tuple[str, str, bytes | None]]:
    for template, operations in spec["paths"].items():
        for method, operation in operations.items():
            method = method.upper()
            names = re.findall(r"{(\w+)}", template)
            real = re.sub(r"{(\w+)}", lambda m: ids.get(m.group(1), "x"), template)
            body = b"{}" if method in ("POST", "PATCH", "PUT") else None
            for value in PATH_VALUES if names else ():
                yield method, re.sub(r"{(\w+)}", value, template), body
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query":
                    for value in QUERY_VALUES:
                        yield method, f"{real}?{parameter['name']}={value}", body
            if method in ("POST", "PATCH", "PUT"):
                for raw in _bodies(operation, spec):
                    yield method, real, raw


async def _send(client: Client, method: str, path: str, body: bytes | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {client.key}", "Content-Type": "application/json"}
    url = URL(client.base + path, encoded=True)
    async with client.session.request(method, url, data=body, headers=headers) as r:
        raw = await r.read()
        problem = None
        if r.content_type == "application/problem+json":
            problem = json.loads(raw)
        return r.status, problem


async def _fuzz(client: Client, ids: dict[str, str]) -> int:
    spec = (await client.get("/openapi.json", key="")).body
    failures: list[str] = []
    sent = 0
    for method, path, body in _requests(spec, ids):
        status, problem = await _send(client, method, path, body)
        sent += 1
        where = f"{method} {path} {body[:120] if body else b''!r}"
        if status >= 500:
            failures.append(f"{status} {where}")
        elif (
            status >= 400
            and path.startswith("/v1")
            and (problem is None or not problem.get("code") or not problem.get("detail"))
        ):
            failures.append(f"{status} without a problem and its reason: {where}")
    assert not failures, "\n".join(failures[:40])
    return sent


async def test_no_bad_input_gets_a_5xx_and_nothing_stored_is_harmed(stack: Stack) -> None:
    group = await stack.create_group("fuzzed", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"], max_scans=50)
    live = await stack.issuer.post(
        "/v1/live-codes", {"name": "live", "group_ids": [group["group_id"]]}
    )
    assert live.status == 201, live.body
    before = (await stack.issuer.get(f"/v1/groups/{group['group_id']}")).body
    ids = {
        "group_id": group["group_id"],
        "code_id": code["code_id"],
        "live_code_id": live.body["live_code_id"],
        "key_id": str(uuid.uuid4()),  # never the stack's own key: fuzzing must not lock us out
        "kind": "png",
        "request_id": str(uuid.uuid4()),
        "user_id": "fuzzer",
        "token": code["payload"].rsplit("/", 1)[1],
    }
    sent = await _fuzz(stack.issuer, ids) + await _fuzz(stack.redeemer, ids)
    assert sent > 800  # every operation of both specs, many times over

    # What was stored before is intact, and both services still work end to end.
    after = (await stack.issuer.get(f"/v1/groups/{group['group_id']}")).body
    assert after["name"] == before["name"] == "fuzzed"
    assert after["max_members"] == before["max_members"]
    fresh = await stack.issue_code(group["group_id"])
    scanned = await stack.scan(fresh["payload"], "after-the-fuzz")
    assert scanned.status == 200, scanned.body
    joined = await stack.join(scanned.body["join_token"], "after-the-fuzz")
    assert joined.status == 201, joined.body


FORMS = (
    {"name": NUL},
    {"name": "\x7f\x01"},
    {"invite_code": NUL},
    {"phone_last4": NUL},
    {"phone_last4": "１２３４"},  # full-width digits
    {"real_name": NUL},
    {"lat": "nan", "lon": "inf"},
    {"lat": "1e309", "lon": "-1e309", "accuracy": "nan"},
    {"lat": "31.2", "lon": "121.5", "accuracy": "-5"},
    {"lat": NUL, "lon": NUL},
    {"name": "x" * 10_000},
)


async def test_the_landing_form_takes_any_junk_without_a_5xx(stack: Stack) -> None:
    """What a person (or a script) can type into the page's form, on each verification mode."""
    group = await stack.create_group("landing junk", profile="wecom_internal")
    codes = [
        await stack.issue_code(group["group_id"], rotate=False),
        await stack.issue_code(
            group["group_id"],
            rotate=False,
            verification={"mode": "invite_code", "invite_code": "SECRET"},
        ),
        await stack.issue_code(
            group["group_id"],
            rotate=False,
            # with a list: the page refuses phone codes it cannot check (test_landing_verification)
            verification={"mode": "phone_last4", "phone_last4": ["1234"]},
        ),
        await stack.issue_code(
            group["group_id"],
            rotate=False,
            geofence={"lat": 31.2, "lon": 121.5, "radius_m": 500},
        ),
    ]
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as session:
        failures = []
        for code in codes:
            for form in FORMS:
                async with session.get(code["payload"]) as page:
                    assert page.status == 200
                    csrf = re.search(r'name="csrf" value="([^"]+)"', await page.text())
                assert csrf is not None
                data = {**form, "csrf": csrf.group(1)}
                async with session.post(code["payload"], data=data) as post:
                    if post.status >= 500:
                        failures.append((post.status, code["code_id"], form))
                    assert "text/html" in post.headers["Content-Type"]
        junk_cookie = {"Cookie": "qunma_visitor=%00.garbage"}
        async with session.get(codes[0]["payload"], headers=junk_cookie) as page:
            assert page.status == 200
    assert not failures, failures
