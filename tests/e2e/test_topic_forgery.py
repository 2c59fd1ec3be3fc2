"""The attack the batch signatures stop, on a running stack: someone who can produce to
the issuer's topic writes an `ApiKeyCreated` (scope admin) at the next position of a
partition. The redeemer never accepts that key, reports the record, and applies the
issuer's own event of that position when it comes."""

from __future__ import annotations

import asyncio
import hashlib
import uuid

import msgspec
from aiokafka import AIOKafkaProducer

from shared.chain import link
from shared.clock import utcnow
from shared.events.envelope import Envelope, canonical_bytes
from shared.ids import uuid7
from tests.support.stack import Stack


async def _head(stack: Stack, partition: int) -> tuple[int, str]:
    page = await stack.issuer.get(
        f"/v1/log?partition={partition}&after=999999999", key=stack.settings.log_token
    )
    return page.body["head"]["position"], page.body["head"]["hash"]


async def _rejected(stack: Stack, partition: int) -> int:
    ready = await stack.redeemer.get("/readyz")
    return int(ready.body["checks"]["projection"]["partitions"][str(partition)]["rejected"])


async def test_a_forged_admin_key_on_the_topic_is_never_accepted(stack: Stack) -> None:
    await stack.quiet()
    log = stack.settings.issuer_log
    partition = log.partition_for(stack.tenant_id)  # where this tenant's key events go
    position, prev = await _head(stack, partition)
    secret = "qk_forged-" + uuid.uuid4().hex
    data = {
        "key_id": str(uuid7()),
        "name": "backdoor",
        "key_hash": hashlib.sha256(secret.encode()).hexdigest(),
        "scopes": ["admin"],
    }
    envelope = Envelope(
        event_id=uuid7(),
        type="ApiKeyCreated",
        schema=1,
        tenant_id=uuid.UUID(stack.tenant_id),
        stream_id=f"tenant:{stack.tenant_id}",
        stream_version=999,
        occurred_at=utcnow(),
        data=msgspec.Raw(msgspec.json.encode(data, order="sorted")),
        log=log.name,
        partition=partition,
        position=position + 1,
        prev_hash=prev,
    )
    body = canonical_bytes(envelope)
    digest = link(bytes.fromhex(prev), body)  # the unkeyed hash anyone can compute
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka.bootstrap, acks="all")
    await producer.start()
    try:
        await producer.send_and_wait(
            log.name,
            value=body,
            key=stack.tenant_id.encode(),
            partition=partition,
            headers=[("hash", digest.hex().encode())],
        )
    finally:
        await producer.stop()
    async with asyncio.timeout(30):  # the redeemer's patience, then the issuer's log decides
        while await _rejected(stack, partition) == 0:
            await asyncio.sleep(0.05)
    probe = f"/v1/groups/{uuid.uuid4()}/members"
    assert (await stack.redeemer.get(probe, key=secret)).status == 401
    # The issuer's own event of that position (a real key) is applied, not skipped.
    real = await stack.issuer.post("/v1/api-keys", {"name": "real", "scopes": ["redeem"]})
    assert real.status == 201
    async with asyncio.timeout(30):  # sealed at the very position the forgery claimed
        while (await _head(stack, partition))[0] < position + 1:
            await asyncio.sleep(0.05)
    assert (await _head(stack, partition))[0] == position + 1
    async with asyncio.timeout(30):
        while (await stack.redeemer.get(probe, key=real.body["api_key"])).status == 401:
            await asyncio.sleep(0.05)
    assert (await stack.redeemer.get(probe, key=secret)).status == 401
    ready = await stack.redeemer.get("/readyz")
    assert ready.status == 200, ready.body
    state = ready.body["checks"]["projection"]["partitions"][str(partition)]
    assert state["broken"] is None and state["rejected"] == 1
    # The issuer's record came signed: applied from Kafka, nothing asked of the log API.
    assert state["gaps_filled"] == 0
