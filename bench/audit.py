"""`qunma audit verify` over a million events, beside the raw aiokafka read of the same topic.

    python -m bench.audit [--events N] [--quick] [--baseline bench/results/FILE.json]

1. A Tansu broker (the one `qunma up` runs) gets a redeemer-shaped log: 4 partitions of
   real envelopes (scans accepted, tokens redeemed, members joined, with sealed personal
   values: ~700 bytes each), each
   partition a hash chain with a `CheckpointSealed` every 1,000 events, signed with a log
   key, each record sent with its `hash` header, as the relay writes them.
2. The baseline is the plain aiokafka read of the same topic: `getmany` with the consumer
   settings `verify` uses, counting the `ConsumerRecord`s and doing nothing else; once in
   one process, once in as many processes as `verify` uses, each with its share of the
   partitions. (`verify`'s workers skip the `ConsumerRecord`s: shared/audit/fastfetch.py.)
3. `qunma audit verify --json` (the CLI, as an auditor runs it, the key pinned from a JWKS
   file) reports its own rate and the peak resident memory of its processes; it runs with
   the default workers (one per CPU) and with one. Verify runs once when a quarter of the
   log is in, and again at the full size: memory must not grow with the log.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import msgspec
from aiokafka import AIOKafkaProducer, TopicPartition

from bench.common import parser, report
from shared.audit.merkle import Frontier, leaf_hash
from shared.audit.run import _share
from shared.audit.sources import audit_consumer
from shared.chain import GENESIS, link
from shared.crypto.personal import PersonKey, new_person
from shared.crypto.signing import SigningKey, b64url
from shared.events.base import encode_data
from shared.events.envelope import Envelope, canonical_bytes
from shared.events.log import CheckpointSealed, LogKeyAdded, checkpoint_message
from shared.events.redeemer import JoinTokenRedeemed, MemberJoined, ScanAccepted
from shared.kafka import KafkaSettings, ensure_topics
from shared.runtime.broker import EmbeddedBroker
from shared.runtime.children import free_port
from shared.store.eventstore import LogSpec
from shared.store.sealing import rfc3339

LOG = "qunma.redeemer.events"
PARTITIONS = 4
EVERY = 1000


class _Writer:
    """Seals a redeemer-shaped log as the relay would, partition by partition."""

    def __init__(self, key: SigningKey) -> None:
        self.key = key
        self.heads = {p: (0, GENESIS) for p in range(PARTITIONS)}
        self.trees = {p: Frontier() for p in range(PARTITIONS)}
        self.since = dict.fromkeys(range(PARTITIONS), 0)
        self.checkpoints = dict.fromkeys(range(PARTITIONS), 0)
        # One key seals every user here: what matters is the sealed values' size and shape.
        self.person_key = PersonKey.generate()
        self.at = datetime(2026, 11, 1, tzinfo=UTC)

    def _seal(self, partition: int, event: Any, stream: str, version: int) -> tuple[bytes, bytes]:
        position, prev = self.heads[partition]
        self.at += timedelta(milliseconds=1)
        body = canonical_bytes(
            Envelope(
                event_id=uuid.uuid4(),
                type=event.type_name(),
                schema=event.SCHEMA,
                tenant_id=None if stream.startswith(("log", "check")) else uuid.UUID(int=7),
                stream_id=stream,
                stream_version=version,
                occurred_at=self.at,
                data=msgspec.Raw(encode_data(event)),
                log=LOG,
                partition=partition,
                position=position + 1,
                prev_hash=prev.hex(),
            )
        )
        digest = link(prev, body)
        self.heads[partition] = (position + 1, digest)
        self.trees[partition].append(leaf_hash(digest))
        return body, digest

    def records(self, partition: int, n: int) -> list[tuple[bytes, bytes]]:
        out = []
        if self.heads[partition][0] == 0 and partition == LogSpec(LOG, PARTITIONS).partition_for(
            "log-keys"
        ):
            key = LogKeyAdded(
                key_id=self.key.key_id,
                service="redeemer",
                algorithm="Ed25519",
                public_key=self.key.public_b64,
            )
            out.append(self._seal(partition, key, "log-keys", 1))
        while len(out) < n:
            scan = uuid.uuid4()
            group = uuid.uuid4()
            person, user = new_person(), self.person_key.seal("user", f"wx_{uuid.uuid4().hex[:16]}")
            kind = len(out) % 3
            event: Any
            if kind == 0:
                event = ScanAccepted(
                    scan_id=scan,
                    code_id=uuid.uuid4(),
                    group_id=group,
                    person=person,
                    user=user,
                    ip=self.person_key.seal("ip", "203.0.113.7"),
                    token_expires_at=self.at,
                    day=self.at.date(),
                )
            elif kind == 1:
                event = JoinTokenRedeemed(scan_id=scan, group_id=group, person=person, user=user)
            else:
                event = MemberJoined(
                    group_id=group, person=person, user=user, code_id=uuid.uuid4(), scan_id=scan
                )
            out.append(self._seal(partition, event, f"scan:{scan}", 1 + kind))
            self.since[partition] += 1
            if self.since[partition] >= EVERY:
                out.append(self._checkpoint(partition))
        return out

    def _checkpoint(self, partition: int) -> tuple[bytes, bytes]:
        size, head = self.heads[partition]
        root = self.trees[partition].root().hex()
        sealed_at = rfc3339(self.at)
        message = checkpoint_message(LOG, partition, size, root, head.hex(), sealed_at)
        cp = CheckpointSealed(
            tree_size=size,
            tree_root=root,
            chain_head=head.hex(),
            sealed_at=sealed_at,
            key_id=self.key.key_id,
            signature=b64url(self.key.sign(message)),
        )
        self.since[partition] = 0
        self.checkpoints[partition] += 1
        return self._seal(partition, cp, f"checkpoints:{partition}", self.checkpoints[partition])

    def close(self) -> list[tuple[int, tuple[bytes, bytes]]]:
        """A last checkpoint for every partition with events after its last one."""
        return [(p, self._checkpoint(p)) for p in range(PARTITIONS) if self.since[p]]


async def fill(kafka: KafkaSettings, writer: _Writer, events: int) -> float:
    started = time.monotonic()
    producer = AIOKafkaProducer(
        bootstrap_servers=kafka.bootstrap, linger_ms=20, max_batch_size=1 << 20, acks=1
    )
    await producer.start()
    try:
        per_partition = events // PARTITIONS
        for start in range(0, per_partition, 5_000):
            chunk = min(5_000, per_partition - start)
            sends = []
            for partition in range(PARTITIONS):
                for body, digest in writer.records(partition, chunk):
                    sends.append(
                        await producer.send(
                            LOG,
                            body,
                            partition=partition,
                            headers=[("hash", digest.hex().encode())],
                        )
                    )
            await asyncio.gather(*sends)
        for partition, (body, digest) in writer.close():
            await producer.send_and_wait(
                LOG, body, partition=partition, headers=[("hash", digest.hex().encode())]
            )
    finally:
        await producer.stop()
    return time.monotonic() - started


async def _raw(kafka: KafkaSettings, parts: list[tuple[str, int]]) -> int:
    """The plain aiokafka read: getmany until each partition's high watermark, counting."""
    consumer = audit_consumer(kafka, "bench-raw")
    await consumer.start()
    count = 0
    try:
        tps = [TopicPartition(topic, p) for topic, p in parts]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        left = set(tps)
        while left:
            batch = await consumer.getmany(*left, timeout_ms=1000, max_records=10_000)
            for records in batch.values():
                count += len(records)
            for tp in list(left):
                highwater = consumer.highwater(tp)
                if highwater is not None and await consumer.position(tp) >= highwater:
                    left.discard(tp)
    finally:
        await consumer.stop()
    return count


def _raw_process(bootstrap: str, parts: list[tuple[str, int]], out: Any) -> None:
    out.put(asyncio.run(_raw(KafkaSettings(bootstrap), parts)))


async def raw_read(kafka: KafkaSettings, processes: int) -> dict[str, float]:
    parts = [(LOG, p) for p in range(PARTITIONS)]
    started = time.monotonic()
    if processes == 1:
        count = await _raw(kafka, parts)
    else:
        context = multiprocessing.get_context("spawn")
        out = context.Queue()
        shares = _share(parts, {}, processes)
        procs = [
            context.Process(target=_raw_process, args=(kafka.bootstrap, share, out))
            for share in shares
        ]
        for proc in procs:
            proc.start()
        count = 0
        for _ in procs:
            count += await asyncio.to_thread(out.get)
        for proc in procs:
            proc.join()
    seconds = time.monotonic() - started
    return {"events": count, "seconds": round(seconds, 2), "events_per_second": count / seconds}


async def verify_cli(bootstrap: str, jwks: Path, workers: int) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUNMA_")}
    env.update(
        QUNMA_KAFKA_BOOTSTRAP=bootstrap,
        QUNMA_REDEEMER_TOPIC=LOG,
        QUNMA_LOG_PARTITIONS=str(PARTITIONS),
        # Only the redeemer's log exists here; the issuer's topic is an empty one.
        QUNMA_ISSUER_TOPIC="bench.issuer.empty",
        QUNMA_ISSUER_URL="http://127.0.0.1:9",
        QUNMA_REDEEMER_URL="http://127.0.0.1:9",
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qunma",
        "audit",
        "--data-dir",
        "/nonexistent",
        "verify",
        "--json",
        "--jwks",
        str(jwks),
        "--workers",
        str(workers),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        raise RuntimeError(f"verify failed ({proc.returncode}): {out.decode()} {err.decode()}")
    body: dict[str, Any] = json.loads(out)
    return {
        "events": body["events"],
        "seconds": body["seconds"],
        "events_per_second": body["events_per_second"],
        "workers": body["workers"],
        "peak_rss_mib": round(body["peak_rss_kib"] / 1024, 1),
    }


async def main() -> None:
    p = parser(__doc__ or "")
    p.add_argument("--events", type=int, default=1_000_000)
    p.add_argument("--workers", type=int, help="verify's workers (default: its own, a CPU each)")
    args = p.parse_args()
    events = 100_000 if args.quick else args.events
    workers = args.workers or os.cpu_count() or 1
    root = Path(tempfile.mkdtemp(prefix="qunma-bench-audit-"))
    broker = EmbeddedBroker(free_port(), root / "broker.log")
    await broker.start()
    try:
        kafka = KafkaSettings(broker.bootstrap)
        await ensure_topics(kafka, {LOG: PARTITIONS, "bench.issuer.empty": PARTITIONS})
        key = SigningKey.generate()
        jwks = root / "jwks.json"
        jwks.write_text(
            json.dumps(
                {
                    "keys": [
                        {
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": key.public_b64,
                            "kid": key.key_id,
                            "use": "sig",
                            "alg": "EdDSA",
                            "log": LOG,
                        }
                    ]
                }
            )
        )
        writer = _Writer(key)
        quarter = events // 4
        filled = await fill(kafka, writer, quarter)
        small = await verify_cli(broker.bootstrap, jwks, workers)
        filled += await fill(kafka, writer, events - quarter)
        raw_one = await raw_read(kafka, 1)
        raw_many = await raw_read(kafka, workers)
        full = await verify_cli(broker.bootstrap, jwks, workers)
        one = await verify_cli(broker.bootstrap, jwks, 1)
    finally:
        await broker.stop()
    figures = {
        "events": full["events"],
        "fill_seconds": round(filled, 1),
        "raw_read_1_process": raw_one,
        f"raw_read_{workers}_processes": raw_many,
        "verify": full,
        "verify_1_worker": one,
        f"verify_at_{small['events']}_events": small,
        "verify_over_raw_1_process": round(
            full["events_per_second"] / raw_one["events_per_second"], 3
        ),
        f"verify_over_raw_{workers}_processes": round(
            full["events_per_second"] / raw_many["events_per_second"], 3
        ),
        "verify_1_worker_over_raw_1_process": round(
            one["events_per_second"] / raw_one["events_per_second"], 3
        ),
        "peak_rss_growth_mib": round(full["peak_rss_mib"] - small["peak_rss_mib"], 1),
    }
    report("audit", {"figures": figures}, args)


if __name__ == "__main__":
    asyncio.run(main())
