"""`audit export`: both logs into one JSON Lines file that verifies offline.

The first line is a header (format, export time, partition counts, the checkpoint
period); every other line is one record: log, partition, Kafka offset, the hash the relay
sent with it, and the event's canonical bytes spliced verbatim. The file is written
beside its destination and renamed into place when complete, so a half export never
passes for a whole one.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import msgspec

from shared.audit.sources import (
    EXPORT_FORMAT,
    ExportHeader,
    audit_consumer,
    export_line,
    read_partitions,
)
from shared.chain import link
from shared.kafka import KafkaSettings
from shared.store.sealing import rfc3339


class _Prev(msgspec.Struct):
    prev_hash: str


_prev = msgspec.json.Decoder(_Prev)


def _own_hash(body: bytes) -> str:
    """The record's hash over the prev_hash it carries, for a record sent without one."""
    try:
        return link(bytes.fromhex(_prev.decode(body).prev_hash), body).hex()
    except (msgspec.DecodeError, ValueError):
        return ""


async def export(
    kafka: KafkaSettings,
    partitions: dict[str, int],
    out: Path,
    checkpoint_seconds: float,
    progress: Callable[[int], None] | None = None,
) -> int:
    """Write every record of the logs to `out`; returns how many."""
    header = ExportHeader(
        qunma_export=EXPORT_FORMAT,
        exported_at=rfc3339(datetime.now(UTC)),
        partitions=dict(sorted(partitions.items())),
        checkpoint_seconds=checkpoint_seconds,
    )
    parts = [(log, p) for log, count in sorted(partitions.items()) for p in range(count)]
    partial = out.with_name(out.name + ".partial")
    written = 0
    consumer = audit_consumer(kafka, "audit-export")
    await consumer.start()
    try:
        with partial.open("wb", buffering=1 << 20) as f:
            f.write(msgspec.json.encode(header) + b"\n")
            async for (log, partition), items in read_partitions(consumer, parts):
                for body, offset, claimed in items:
                    digest = claimed.hex() if claimed else _own_hash(body)
                    f.write(export_line(log, partition, offset, digest, body))
                written += len(items)
                if progress is not None:
                    progress(len(items))
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        partial.unlink(missing_ok=True)
        raise
    finally:
        await consumer.stop()
    partial.replace(out)
    return written
