"""Inclusion and consistency proofs from a real stack, checked the way an auditor checks
them (nothing in the answer trusted), and refused or failing when they should."""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from typing import Any

import msgspec
import pytest

from shared.audit.keys import pins_from_jwks
from shared.audit.proofcheck import (
    ConsistencyDoc,
    InclusionDoc,
    check_consistency,
    check_inclusion,
)
from tests.support.infra import Infra
from tests.support.stack import Client, Stack, started_stack

EVERY = 4  # a checkpoint after every 4 events; the time rule is kept out of the way


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    env = {"QUNMA_CHECKPOINT_EVERY": str(EVERY), "QUNMA_CHECKPOINT_SECONDS": "600"}
    async with started_stack(infra, extra_env=env) as started:
        for g in range(24):
            await started.create_group(f"proven {g}")
        yield started


async def _log(stack: Stack, client: Client, partition: int) -> list[dict[str, Any]]:
    page = await client.get(
        f"/v1/log?partition={partition}&limit=1000", key=stack.settings.log_token
    )
    return list(page.body["events"])


async def _settled(stack: Stack, client: Client) -> dict[int, dict[str, Any]]:
    """Each partition's head once everything sealed is published."""
    async with asyncio.timeout(30):
        while True:
            heads = (await client.get("/v1/log/heads", key=stack.settings.log_token)).body
            if all(p["published_position"] == p["sealed_position"] for p in heads["partitions"]):
                return {p["partition"]: p for p in heads["partitions"]}
            await asyncio.sleep(0.1)


async def _keys(client: Client, log: str) -> dict[str, str]:
    return pins_from_jwks((await client.get("/.well-known/jwks.json", key="")).body).get(log, {})


async def _covered_group_event(stack: Stack) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """(partition, a GroupCreated a checkpoint covers, that partition's head)."""
    heads = await _settled(stack, stack.issuer)
    for partition, head in heads.items():
        if head["checkpoint"] is None:
            continue
        for item in await _log(stack, stack.issuer, partition):
            if (
                item["event"]["type"] == "GroupCreated"
                and item["position"] <= head["checkpoint"]["tree_size"]
            ):
                return partition, item, head
    raise AssertionError("no checkpoint covers a group yet")


async def test_an_inclusion_proof_checks_out_and_fails_when_one_hash_changes(
    stack: Stack,
) -> None:
    partition, item, head = await _covered_group_event(stack)
    event_id = item["event"]["event_id"]
    size = head["checkpoint"]["tree_size"]
    # Without a tree size the proof is against the latest checkpoint, which the relay may
    # have sealed since the head was read: it covers the event and is no older.
    latest = await stack.issuer.get(f"/v1/log/proof?event_id={event_id}")
    assert latest.status == 200, latest.body
    newest = msgspec.json.decode(latest.raw, type=InclusionDoc).checkpoint.tree_size
    assert item["position"] <= newest and newest >= size
    answer = await stack.issuer.get(f"/v1/log/proof?event_id={event_id}&tree_size={size}")
    assert answer.status == 200, answer.body
    doc = msgspec.json.decode(answer.raw, type=InclusionDoc)
    assert (doc.partition, doc.position) == (partition, item["position"])
    assert doc.checkpoint.tree_size == size
    keys = await _keys(stack.issuer, doc.log)
    assert check_inclusion(doc, keys) == []
    if doc.audit_path:
        bent = list(doc.audit_path)
        bent[0] = ("0" if bent[0][0] != "0" else "1") + bent[0][1:]
        problems = check_inclusion(msgspec.structs.replace(doc, audit_path=bent), keys)
        assert any("audit path" in p for p in problems)
    # A leaf that is not the event's, and a tree head the key did not sign.
    assert check_inclusion(msgspec.structs.replace(doc, leaf_index=doc.leaf_index + 1), keys)
    assert check_inclusion(doc, {k: "A" * 43 for k in keys})


async def test_a_tenant_proves_its_own_events_only_and_the_log_token_any(stack: Stack) -> None:
    _, item, _ = await _covered_group_event(stack)
    path = f"/v1/log/proof?event_id={item['event']['event_id']}"
    assert (await stack.issuer.get(path, key=stack.settings.log_token)).status == 200
    other, _, other_key = await stack.new_tenant("prying")
    refused = await other.get(path)
    assert refused.status == 404 and refused.body["code"] == "not_found"
    # The redeemer proves its own log's events, not the issuer's.
    assert (await stack.redeemer.get(path)).status == 404
    assert (await stack.issuer.get(path, key="")).status == 401
    bad = await stack.issuer.get("/v1/log/proof?event_id=not-a-uuid")
    assert bad.status == 422 and bad.body["code"] == "invalid_request"
    del other_key


async def test_an_event_after_the_last_checkpoint_is_not_checkpointed_yet(stack: Stack) -> None:
    """A new group's event waits for the next checkpoint: 600 s, or 4 events in its
    partition (then the count rule covers it at once: 200, not 409)."""
    group = await stack.create_group("not yet proven")
    found: list[dict[str, Any]] = []
    async with asyncio.timeout(30):
        while not found:  # committed is not yet sealed: wait for its place in the log
            heads = await _settled(stack, stack.issuer)
            found = [
                item
                for partition in heads
                for item in await _log(stack, stack.issuer, partition)
                if item["event"]["data"].get("group_id") == group["group_id"]
            ]
    assert len(found) == 1
    item = found[0]
    # A checkpoint the count rule sealed with the event is visible with it: read it now.
    head = (await _settled(stack, stack.issuer))[item["event"]["partition"]]
    answer = await stack.issuer.get(f"/v1/log/proof?event_id={item['event']['event_id']}")
    if head["checkpoint"]["tree_size"] >= item["position"]:
        assert answer.status == 200, answer.body
    else:
        assert answer.status == 409 and answer.body["code"] == "not_checkpointed"
        assert answer.headers["Retry-After"] == "600"


async def test_a_proof_against_an_older_checkpoint_that_does_not_cover_it_is_refused(
    stack: Stack,
) -> None:
    partition, item, _ = await _covered_group_event(stack)
    first = next(
        i
        for i in await _log(stack, stack.issuer, partition)
        if i["event"]["type"] == "CheckpointSealed"
    )
    size = first["position"] - 1
    answer = await stack.issuer.get(
        f"/v1/log/proof?event_id={item['event']['event_id']}&tree_size={size}"
    )
    if item["position"] <= size:
        assert answer.status == 200
        assert msgspec.json.decode(answer.raw, type=InclusionDoc).checkpoint.tree_size == size
    else:
        assert answer.status == 409 and answer.body["code"] == "not_checkpointed"
    missing = await stack.issuer.get(
        f"/v1/log/proof?event_id={item['event']['event_id']}&tree_size={size + 1}"
    )
    assert missing.status == 404


async def test_a_consistency_proof_checks_out_and_fails_when_one_hash_changes(
    stack: Stack,
) -> None:
    heads = await _settled(stack, stack.issuer)
    partition = max(heads, key=lambda p: heads[p]["sealed_position"])
    checkpoints = [
        i
        for i in await _log(stack, stack.issuer, partition)
        if i["event"]["type"] == "CheckpointSealed"
    ]
    assert len(checkpoints) >= 2
    first, last = checkpoints[0], checkpoints[-1]
    answer = await stack.issuer.get(
        f"/v1/log/consistency?partition={partition}&from={first['position'] - 1}"
    )
    assert answer.status == 200, answer.body
    doc = msgspec.json.decode(answer.raw, type=ConsistencyDoc)
    assert doc.second.position == last["position"]
    keys = await _keys(stack.issuer, doc.log)
    assert check_consistency(doc, keys) == []
    by_id = await stack.issuer.get(
        f"/v1/log/consistency?from={first['event']['event_id']}&to={last['event']['event_id']}"
    )
    assert by_id.status == 200 and json.loads(by_id.raw)["proof"] == json.loads(answer.raw)["proof"]
    bent = list(doc.proof)
    bent[-1] = ("0" if bent[-1][0] != "0" else "1") + bent[-1][1:]
    assert check_consistency(msgspec.structs.replace(doc, proof=bent), keys)
    backwards = await stack.issuer.get(
        f"/v1/log/consistency?from={last['event']['event_id']}&to={first['event']['event_id']}"
    )
    assert backwards.status == 422
    no_partition = await stack.issuer.get("/v1/log/consistency?from=4")
    assert no_partition.status == 422 and "partition" in no_partition.body["detail"]
    unknown = await stack.issuer.get(f"/v1/log/consistency?partition={partition}&from=3")
    assert unknown.status in (200, 404)  # 3 is a checkpoint's size only if it landed there


async def test_the_redeemer_signs_its_own_log_with_its_own_key(stack: Stack) -> None:
    issuer_keys = (await stack.issuer.get("/.well-known/jwks.json", key="")).body["keys"]
    redeemer_keys = (await stack.redeemer.get("/.well-known/jwks.json", key="")).body["keys"]
    assert [k["log"] for k in redeemer_keys] == [stack.settings.redeemer_topic]
    logged = {k["kid"] for k in issuer_keys if k.get("log") == stack.settings.issuer_topic}
    assert len(logged) == 1 and not logged & {k["kid"] for k in redeemer_keys}


async def test_audit_prove_fetches_and_checks_a_proof(stack: Stack) -> None:
    _, item, _ = await _covered_group_event(stack)
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qunma",
        "audit",
        "--data-dir",
        "/nonexistent",
        "prove",
        item["event"]["event_id"],
        "--json",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=stack.env,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    result = json.loads(out)
    assert result["ok"] and result["position"] == item["position"] and not result["problems"]
