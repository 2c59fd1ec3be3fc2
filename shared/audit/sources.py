"""Where an audit reads a log from: the Kafka topics, or an export file.

Both hand each partition's records over in log order, as (bytes, where, claimed hash)
batches. A topic is read up to the end it had when the read began: the high watermark of
the first fetch (Tansu's ListOffsets can report less than the true end, see
docs/operations.md, so the fetch's own figure is the one used).
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.audit.findings import Item
from shared.kafka import KafkaSettings

EXPORT_FORMAT = 1


def audit_consumer(kafka: KafkaSettings, purpose: str) -> AIOKafkaConsumer:
    """A consumer tuned for reading whole partitions once: large fetches, but bounded, so
    memory does not follow the log's length. CRCs are not checked: every record's bytes
    are checked against the hash chain instead, which also catches what a CRC would."""
    return AIOKafkaConsumer(
        **kafka.client_options(),
        client_id=f"{kafka.client_id}-{purpose}",
        group_id=None,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        fetch_max_wait_ms=kafka.fetch_max_wait_ms,
        request_timeout_ms=kafka.request_timeout_ms,
        max_partition_fetch_bytes=4 << 20,
        fetch_max_bytes=16 << 20,
        check_crcs=False,
    )


def _claimed(headers: Sequence[tuple[str, bytes]]) -> bytes | None:
    for name, value in headers:
        if name == "hash":
            try:
                return binascii.unhexlify(value)
            except (binascii.Error, ValueError):
                return b""  # a hash that is not hex matches nothing
    return None


async def read_partitions(
    consumer: AIOKafkaConsumer, parts: Sequence[tuple[str, int]], stall_timeout: float = 30.0
) -> AsyncIterator[tuple[tuple[str, int], list[Item]]]:
    """((topic, partition), records) batches until every partition reached its end."""
    tps = [TopicPartition(topic, partition) for topic, partition in parts]
    consumer.assign(tps)
    await consumer.seek_to_beginning(*tps)
    listed = await consumer.end_offsets(tps)
    ends: dict[TopicPartition, int] = {}
    left = set(tps)
    quiet_since = time.monotonic()
    while left:
        batch = await consumer.getmany(*left, timeout_ms=1000, max_records=10_000)
        for tp, records in batch.items():
            if records:
                quiet_since = time.monotonic()
                if type(records[0]) is tuple:  # already items (shared/audit/fastfetch.py)
                    yield (tp.topic, tp.partition), records
                    continue
                yield (
                    (tp.topic, tp.partition),
                    [(r.value, r.offset, _claimed(r.headers)) for r in records],
                )
        if time.monotonic() - quiet_since > stall_timeout:
            raise TimeoutError(
                f"no records for {stall_timeout:.0f} s before the end of "
                + ", ".join(f"{tp.topic}[{tp.partition}]" for tp in sorted(left))
            )
        for tp in list(left):
            if tp not in ends:
                highwater = consumer.highwater(tp)
                if highwater is None:
                    continue
                ends[tp] = max(highwater, listed[tp])
            if await consumer.position(tp) >= ends[tp]:
                left.discard(tp)


class ExportHeader(msgspec.Struct, kw_only=True):
    qunma_export: int
    exported_at: str
    partitions: dict[str, int]  # log -> partition count
    checkpoint_seconds: float


class _Line(msgspec.Struct):
    log: str
    partition: int
    offset: int
    hash: str
    event: msgspec.Raw


_line = msgspec.json.Decoder(_Line)


def export_line(log: str, partition: int, offset: int, hash_hex: str, body: bytes) -> bytes:
    """One exported record: the event's canonical bytes spliced verbatim, so the line is
    JSON and the exact bytes the chain covers are recoverable from it."""
    return (
        b'{"log":'
        + json.dumps(log).encode()
        + b',"partition":%d,"offset":%d,"hash":"%s","event":'
        % (partition, offset, hash_hex.encode())
        + body
        + b"}\n"
    )


def read_header(path: Path) -> ExportHeader:
    with path.open("rb") as f:
        first = f.readline()
    try:
        header = msgspec.json.decode(first, type=ExportHeader)
    except msgspec.DecodeError as exc:
        raise ValueError(f"{path} is not a qunma export: its first line is no header") from exc
    if header.qunma_export != EXPORT_FORMAT:
        raise ValueError(f"{path}: export format {header.qunma_export} is not {EXPORT_FORMAT}")
    return header


def file_records(
    path: Path, parts: set[tuple[str, int]], chunk: int = 20_000
) -> Iterator[tuple[tuple[str, int], list[Item]]]:
    """((log, partition), records) batches of the partitions in `parts`, in line order.
    `where` is the line number (the header is line 1)."""
    prefixes = tuple(
        b'{"log":' + json.dumps(log).encode() + b',"partition":%d,' % partition
        for log, partition in parts
    )
    pending: dict[tuple[str, int], list[Item]] = {}
    with path.open("rb") as f:
        f.readline()
        for number, raw in enumerate(f, start=2):
            if not raw.startswith(prefixes):
                if raw.strip() and not raw.startswith(b'{"log":'):
                    raise ValueError(f"{path} line {number}: not an exported record")
                continue
            try:
                line = _line.decode(raw)
                claimed = binascii.unhexlify(line.hash)
            except (msgspec.DecodeError, binascii.Error, ValueError):
                # Keep the raw line: the verifier reports it at its place in the chain.
                key = _key_of(raw, parts)
                pending.setdefault(key, []).append((raw, number, b""))
                continue
            key = (line.log, line.partition)
            items = pending.setdefault(key, [])
            items.append((bytes(line.event), number, claimed))
            if len(items) >= chunk:
                yield key, items
                pending[key] = []
    for key, items in pending.items():
        if items:
            yield key, items


def _key_of(raw: bytes, parts: set[tuple[str, int]]) -> tuple[str, int]:
    for log, partition in parts:
        if raw.startswith(b'{"log":' + json.dumps(log).encode() + b',"partition":%d,' % partition):
            return log, partition
    raise AssertionError("a line was taken for a partition it does not start with")


def parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))
