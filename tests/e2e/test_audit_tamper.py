"""`qunma audit verify` against a real stack's logs: untouched they verify; every way of
tampering with them, on an export file and on a Kafka topic, is named by position and kind.

The stack seals a checkpoint every 5 events (or 0.5 s), so each partition has several.
Topic tampering writes the tampered log into a fresh topic and verifies it in place of the
real one (`--topic LOG=TOPIC`, as an auditor checks a mirror), except the duplicate, which
is produced into the live topic itself.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiokafka import AIOKafkaProducer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from shared.crypto.signing import SigningKey
from shared.events.log import LogKeyAdded
from shared.kafka import ensure_topics
from tests.support.infra import Infra, topic_name
from tests.support.stack import Stack, started_stack
from tests.support.tamper import (
    Export,
    Rec,
    flip_byte,
    position,
    rechain,
    replaced_key,
    with_data,
)

CHECKPOINT_EVERY, CHECKPOINT_SECONDS = 5, 0.5


@dataclass
class Audited:
    stack: Stack
    root: Path
    export: Export
    jwks: Path

    async def cli(self, *args: str) -> tuple[int, dict[str, Any], str]:
        """`qunma audit … --json`: exit status, the JSON it printed, and stderr."""
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "qunma",
            "audit",
            "--data-dir",
            str(self.root / "no-stack"),
            *args,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env=self.stack.env,
        )
        out, err = await asyncio.wait_for(proc.communicate(), 120)
        assert proc.returncode is not None
        body = json.loads(out) if out.strip().startswith(b"{") else {}
        return proc.returncode, body, out.decode() + err.decode()


async def _activity(stack: Stack) -> None:
    """Groups, codes, a revocation, scans that pass and fail, and joins: every token is
    redeemed, so nothing expires (and writes) while the tests read the logs."""
    for g in range(6):
        group = await stack.create_group(f"audited {g}")
        code = await stack.issue_code(group["group_id"])
        for u in range(4):
            user = f"wx-{g}-{u}"
            scanned = await stack.scan(code["payload"], user)
            assert scanned.status == 200, scanned.body
            joined = await stack.join(scanned.body["join_token"], user)
            assert joined.status in (200, 201), joined.body
        if g % 2:
            revoked = await stack.issuer.post(
                f"/v1/codes/{code['code_id']}/revoke", {"reason": "audit test"}
            )
            assert revoked.status == 200, revoked.body
            # Until the redeemer has the revocation, a scan still passes: join it, try again.
            async with asyncio.timeout(10):
                for late in itertools.count():
                    refused = await stack.scan(code["payload"], f"wx-{g}-late-{late}")
                    if refused.status != 200:
                        break
                    await stack.join(refused.body["join_token"], f"wx-{g}-late-{late}")
                    await asyncio.sleep(0.05)
            assert refused.status == 410, refused.body


async def _events_older_than(stack: Stack, seconds: float) -> None:
    """Until the newest event of both logs is `seconds` old by the databases' clock."""
    for name in ("QUNMA_ISSUER_DATABASE_URL", "QUNMA_REDEEMER_DATABASE_URL"):
        conn = await asyncpg.connect(stack.env[name])
        try:
            async with asyncio.timeout(30):
                while await conn.fetchval(
                    "SELECT max(occurred_at) > now() - make_interval(secs => $1) FROM events",
                    seconds,
                ):
                    await asyncio.sleep(0.05)
        finally:
            await conn.close()


@pytest.fixture(scope="module")
async def audited(infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Audited]:
    root = tmp_path_factory.mktemp("audit")
    env = {
        "QUNMA_CHECKPOINT_EVERY": str(CHECKPOINT_EVERY),
        "QUNMA_CHECKPOINT_SECONDS": str(CHECKPOINT_SECONDS),
    }
    async with started_stack(infra, extra_env=env) as stack:
        await _activity(stack)
        await stack.quiet()  # every partition ends with a checkpoint: each has one to cut
        # Old enough that a tail without its checkpoint is truncation, even with --grace 0.
        await _events_older_than(stack, 2 * CHECKPOINT_SECONDS)
        audited = Audited(stack, root, Export(b"", []), root / "jwks.json")
        code, _, text = await audited.cli("export", "--out", str(root / "log.jsonl"))
        assert code == 0, text
        audited.export = Export.load(root / "log.jsonl")
        keys: list[Any] = []
        for client in (stack.issuer, stack.redeemer):
            keys += (await client.get("/.well-known/jwks.json", key="")).body["keys"]
        audited.jwks.write_text(json.dumps({"keys": keys}))
        yield audited


# -- choosing what to tamper with -------------------------------------------------------


def _busiest(export: Export, log: str) -> tuple[str, int]:
    return max(
        ((lg, p) for lg, p in export.partitions() if lg == log),
        key=lambda part: len(export.indexes(*part)),
    )


def _victim(export: Export, log: str) -> tuple[str, int, int]:
    """(log, partition, index in the file) of an ordinary event in the middle of the busiest
    partition, with another event after it and a checkpoint after that."""
    part = _busiest(export, log)
    idx = export.indexes(*part)
    for k in range(len(idx) // 3, len(idx) - 3):
        here, after = export.records[idx[k]].envelope, export.records[idx[k + 1]].envelope
        later = [export.records[i].envelope.type for i in idx[k + 2 :]]
        if (
            here.type not in ("CheckpointSealed", "LogKeyAdded")
            and after.type not in ("CheckpointSealed", "LogKeyAdded")
            and "CheckpointSealed" in later
        ):
            return part[0], part[1], idx[k]
    raise AssertionError(f"no event to tamper with in {part}")


def _records(export: Export, log: str, partition: int) -> list[Rec]:
    return [export.records[i] for i in export.indexes(log, partition)]


def _checkpoints(records: list[Rec]) -> list[int]:
    return [k for k, r in enumerate(records) if r.envelope.type == "CheckpointSealed"]


Expect = tuple[str, int, int, str]  # log, partition, position, kind
Tampering = tuple[dict[tuple[str, int], list[Rec]], Expect, list[str]]


def flip_one_byte(export: Export, log: str) -> Tampering:
    lg, p, i = _victim(export, log)
    records = _records(export, lg, p)
    k = export.indexes(lg, p).index(i)
    records[k] = flip_byte(records[k])
    return {(lg, p): records}, (lg, p, position(records[k]), "edited"), []


def drop_one(export: Export, log: str) -> Tampering:
    lg, p, i = _victim(export, log)
    records = _records(export, lg, p)
    k = export.indexes(lg, p).index(i)
    gone = records.pop(k)
    return {(lg, p): records}, (lg, p, position(gone), "dropped"), []


def swap_two(export: Export, log: str) -> Tampering:
    lg, p, i = _victim(export, log)
    records = _records(export, lg, p)
    k = export.indexes(lg, p).index(i)
    records[k], records[k + 1] = records[k + 1], records[k]
    return {(lg, p): records}, (lg, p, position(records[k + 1]), "reordered"), []


def duplicate_one(export: Export, log: str) -> Tampering:
    lg, p, i = _victim(export, log)
    records = _records(export, lg, p)
    k = export.indexes(lg, p).index(i)
    records.insert(k + 2, records[k])
    return {(lg, p): records}, (lg, p, position(records[k]), "duplicated"), []


def truncate_tail(export: Export, log: str) -> Tampering:
    """The last checkpoint and what follows are cut: the events before it are left without
    a checkpoint, long after the relay would have sealed one."""
    lg, p = _busiest(export, log)
    records = _records(export, lg, p)
    last = _checkpoints(records)[-1]
    return {(lg, p): records[:last]}, (lg, p, position(records[last]), "truncated"), []


def forge_signature(export: Export, log: str) -> Tampering:
    lg, p = _busiest(export, log)
    records = _records(export, lg, p)
    k = _checkpoints(records)[1]
    signature = records[k].envelope.event().signature  # type: ignore[attr-defined]
    forged = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    records[k] = with_data(records[k], signature=forged)
    return {(lg, p): rechain(records)}, (lg, p, position(records[k]), "forged checkpoint"), []


def replace_the_key(export: Export, log: str) -> Tampering:
    """The log key's public half swapped for the attacker's (same key id), and every
    checkpoint of the log re-signed: a perfect rewrite that only a pinned key exposes."""
    key_part = next(
        (r.log, r.partition)
        for r in export.records
        if r.log == log and r.envelope.type == "LogKeyAdded"
    )
    real = next(
        r for r in _records(export, *key_part) if r.envelope.type == "LogKeyAdded"
    ).envelope.event()
    assert isinstance(real, LogKeyAdded)
    attacker = SigningKey(real.key_id, Ed25519PrivateKey.generate())
    changed: dict[tuple[str, int], list[Rec]] = {}
    for lg, p in export.partitions():
        if lg != log:
            continue
        records = [
            replaced_key(r, attacker) if r.envelope.type == "LogKeyAdded" else r
            for r in _records(export, lg, p)
        ]
        changed[(lg, p)] = rechain(records, attacker)
    # Every partition is re-signed: the first of them with a checkpoint is named first.
    lg, p = min(part for part, records in changed.items() if _checkpoints(records))
    first = changed[(lg, p)][_checkpoints(changed[(lg, p)])[0]]
    return changed, (lg, p, position(first), "forged checkpoint"), ["--jwks"]


def slip_in_a_key(export: Export, log: str) -> Tampering:
    """A second LogKeyAdded (the attacker's, endorsed by nobody) right after the real one,
    and that partition re-signed with it: caught without any pin."""
    genuine = next(r for r in export.records if r.log == log and r.envelope.type == "LogKeyAdded")
    lg, p = genuine.log, genuine.partition
    attacker = SigningKey.generate()
    records = _records(export, lg, p)
    slipped = with_data(genuine, key_id=attacker.key_id, public_key=attacker.public_b64)
    at = records.index(genuine) + 1
    records = rechain([*records[:at], slipped, *records[at:]], attacker)
    first = records[_checkpoints(records)[0]]
    return {(lg, p): records}, (lg, p, position(first), "forged checkpoint"), []


def rewrite_an_event(export: Export, log: str) -> Tampering:
    """An event's data changed and the chain recomputed after it, without the key: the
    next checkpoint signed a different log."""
    lg, p, i = _victim(export, log)
    records = _records(export, lg, p)
    k = export.indexes(lg, p).index(i)
    records[k] = with_data(records[k], stream_version_note="rewritten")
    records = rechain(records)
    after = next(j for j in _checkpoints(records) if j > k)
    return {(lg, p): records}, (lg, p, position(records[after]), "edited"), []


TAMPERINGS: list[Callable[[Export, str], Tampering]] = [
    flip_one_byte,
    drop_one,
    swap_two,
    duplicate_one,
    truncate_tail,
    forge_signature,
    replace_the_key,
    slip_in_a_key,
    rewrite_an_event,
]


def _first(body: dict[str, Any]) -> Expect:
    f = body["findings"][0]
    return f["log"], f["partition"], f["position"], f["kind"]


# -- the untouched logs -------------------------------------------------------------------


async def test_the_untouched_logs_verify_live_and_exported(audited: Audited) -> None:
    code, body, text = await audited.cli("verify", "--json")
    assert code == 0, text
    assert body["ok"] and body["events"] == len(audited.export.records)
    assert not any("head" in note for note in body["notes"]), body["notes"]
    assert all(p["checkpoints"] >= 1 for p in body["partitions"] if p["events"])
    code, body, text = await audited.cli(
        "verify", "--file", str(audited.root / "log.jsonl"), "--json", "--grace", "0"
    )
    assert code == 0, text
    assert body["events"] == len(audited.export.records)


async def test_a_terminal_gets_a_readable_verdict(audited: Audited) -> None:
    code, _, text = await audited.cli("verify", "--file", str(audited.root / "log.jsonl"))
    assert code == 0
    assert "log verified" in text and "checkpoints" in text


# -- the matrix on an export ---------------------------------------------------------------


@pytest.mark.parametrize("tamper", TAMPERINGS, ids=lambda t: t.__name__)
@pytest.mark.parametrize("log_kind", ["issuer", "redeemer"])
async def test_tampering_with_an_export_is_named(
    audited: Audited, tamper: Callable[[Export, str], Tampering], log_kind: str
) -> None:
    log = getattr(audited.stack.settings, f"{log_kind}_topic")
    changed, expected, flags = tamper(audited.export, log)
    tampered = audited.export.copy()
    for (lg, p), records in changed.items():
        tampered = _with_partition(tampered, lg, p, records)
    path = tampered.save(audited.root / f"{tamper.__name__}-{log_kind}.jsonl")
    args = ["verify", "--file", str(path), "--json", "--grace", "0"]
    if "--jwks" in flags:
        args += ["--jwks", str(audited.jwks)]
    code, body, text = await audited.cli(*args)
    assert code == 1, text
    assert _first(body) == expected, body["findings"]
    if tamper is replace_the_key:
        # Without a pin the rewrite is self-consistent: say so rather than pretend.
        code, body, text = await audited.cli("verify", "--file", str(path), "--json")
        assert code == 0, text
        assert any("trusted on first use" in n for n in body["notes"])


def _with_partition(export: Export, log: str, partition: int, records: list[Rec]) -> Export:
    """`export` with one partition's lines replaced by `records` (any number of them)."""
    others = [r for r in export.records if (r.log, r.partition) != (log, partition)]
    return Export(export.header, others + records)


# -- the matrix on a topic -----------------------------------------------------------------


async def _mirror(stack: Stack, export: Export, log: str, changed: dict[Any, list[Rec]]) -> str:
    """A new topic holding `log` as `export` has it, with `changed` partitions replaced,
    each record sent with the hash header the relay sends."""
    topic = topic_name("mirror")
    await ensure_topics(stack.settings.kafka, {topic: stack.settings.partitions})
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka.bootstrap, linger_ms=5)
    await producer.start()
    try:
        for partition in range(stack.settings.partitions):
            records = changed.get((log, partition), _records(export, log, partition))
            sends = [
                await producer.send(
                    topic, r.body, partition=partition, headers=[("hash", r.hash.encode())]
                )
                for r in records
            ]
            await asyncio.gather(*sends)
    finally:
        await producer.stop()
    return topic


@pytest.mark.parametrize(
    "tamper", [t for t in TAMPERINGS if t is not truncate_tail], ids=lambda t: t.__name__
)
async def test_tampering_with_a_topic_is_named(
    audited: Audited, tamper: Callable[[Export, str], Tampering]
) -> None:
    log = audited.stack.settings.redeemer_topic
    changed, expected, _ = tamper(audited.export, log)
    topic = await _mirror(audited.stack, audited.export, log, changed)
    # Topics are checked against both services' JWKS by default; two worker processes
    # read them, records without aiokafka's ConsumerRecord (shared/audit/fastfetch.py).
    code, body, text = await audited.cli(
        "verify", "--json", "--grace", "0", "--topic", f"{log}={topic}", "--workers", "2"
    )
    assert code == 1, text
    assert _first(body) == expected, body["findings"]


async def test_a_topic_cut_at_a_checkpoint_is_truncated_by_the_producers_head(
    audited: Audited,
) -> None:
    """A cut right after a checkpoint leaves nothing uncovered: only the producer's
    published head, read before the topic, shows that the log ends early."""
    log = audited.stack.settings.issuer_topic
    lg, p = _busiest(audited.export, log)
    records = _records(audited.export, lg, p)
    cut = _checkpoints(records)[-2] + 1
    topic = await _mirror(audited.stack, audited.export, log, {(lg, p): records[:cut]})
    code, body, text = await audited.cli("verify", "--json", "--topic", f"{log}={topic}")
    assert code == 1, text
    assert _first(body) == (lg, p, cut + 1, "truncated"), body["findings"]


async def test_a_duplicate_produced_into_the_live_topic_is_named_and_a_redelivery_tolerated(
    audited: Audited,
) -> None:
    """Copies produced into the real topic: one record again (a duplicate), and the last
    records again in order (what a relay restart re-sends), tolerated only when asked."""
    stack = audited.stack
    log = stack.settings.redeemer_topic
    lg, p = _busiest(audited.export, log)
    records = _records(audited.export, lg, p)
    producer = AIOKafkaProducer(bootstrap_servers=stack.settings.kafka.bootstrap)
    await producer.start()
    try:
        for r in records[-3:]:
            await producer.send_and_wait(
                log, r.body, partition=p, headers=[("hash", r.hash.encode())]
            )
        code, body, text = await audited.cli("verify", "--json")
        assert code == 1, text
        assert _first(body) == (lg, p, position(records[-3]), "duplicated"), body["findings"]
        code, body, text = await audited.cli("verify", "--json", "--tolerate-duplicates")
        assert code == 0, text
        mine = next(s for s in body["partitions"] if (s["log"], s["partition"]) == (lg, p))
        assert mine["duplicates_tolerated"] == 3
        # A lone copy of an older record is no re-delivery, tolerated or not.
        await producer.send_and_wait(
            log, records[-5].body, partition=p, headers=[("hash", records[-5].hash.encode())]
        )
        code, body, text = await audited.cli("verify", "--json", "--tolerate-duplicates")
        assert code == 1, text
        assert _first(body) == (lg, p, position(records[-5]), "duplicated"), body["findings"]
    finally:
        await producer.stop()
