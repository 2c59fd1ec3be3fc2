"""A token naming a signing key nobody has (a forgery, or a tenant probing) is answered
without holding anyone up: once the projection is caught up it costs one lookup, and then
nothing for a while; a flood of them holds at most its own tenant's share of the slots."""

from __future__ import annotations

import asyncio
import os
import struct
import uuid
from typing import Any

from shared.crypto.signing import b64url
from tests.support.stack import Stack


def _forged(key_id: bytes | None = None) -> str:
    """A well-formed code token signed by a key id no issuer ever made."""
    header = struct.pack(">B16s8sQ", 1, uuid.uuid4().bytes, key_id or os.urandom(8), 0)
    return b64url(header + os.urandom(64))


async def _keys(stack: Stack) -> dict[str, Any]:
    ready = await stack.redeemer.get("/readyz")
    return dict(ready.body["checks"]["admission"])


async def test_an_unknown_key_id_costs_one_lookup_and_then_nothing(stack: Stack) -> None:
    await stack.quiet()
    payload = f"{stack.settings.public_url}/j/{_forged()}"
    before = await _keys(stack)
    answers = [await stack.scan(payload, f"probe-{i}") for i in range(20)]
    assert {(a.status, a.body["code"]) for a in answers} == {(400, "invalid_code")}
    # the landing page asks the same question without a key
    pages = [await stack.redeemer.get(f"/j/{payload.rsplit('/j/', 1)[1]}") for _ in range(5)]
    assert {p.status for p in pages} == {400}
    after = await _keys(stack)
    assert after["unknown_key_lookups"] - before["unknown_key_lookups"] <= 2
    assert after["unknown_keys_from_memory"] - before["unknown_keys_from_memory"] >= 24


async def test_a_flood_of_unknown_keys_leaves_other_tenants_their_slots(stack: Stack) -> None:
    group = await stack.create_group("neighbour", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"])
    _, prober, _ = await stack.new_tenant("prober")
    flood = [
        asyncio.create_task(
            prober.post(
                "/v1/scans",
                {"payload": f"{stack.settings.public_url}/j/{_forged()}", "user_id": f"x{i}"},
            )
        )
        for i in range(60)
    ]
    mine = await stack.scan(code["payload"], "neighbour-1")
    assert mine.status == 200, mine.body
    answers = await asyncio.gather(*flood)
    assert {a.status for a in answers} == {400}
    gate = await _keys(stack)
    assert gate["in_use"] <= 1 and gate["waiting"] == 0
