"""`audit verify` as a whole: partitions spread over worker processes, then one report.

Partitions are independent chains, so each worker replays its share with its own
consumer (or its own pass over an export file) and the coordinator only adds up. Memory
is what one `PartitionCheck` holds per partition, whatever the log's length; checkpoint
signatures are checked in the workers when the keys are pinned, else gathered (one claim
per checkpoint) and checked here once every key event has been read.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import queue
import resource
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec

from shared.audit import fastfetch, memory
from shared.audit.findings import CheckpointClaim, Finding, KeyClaim
from shared.audit.keys import Pins, Trust, pinned_check
from shared.audit.sources import audit_consumer, file_records, read_header, read_partitions
from shared.audit.verify import PartitionCheck
from shared.kafka import KafkaSettings

Part = tuple[str, int]  # (log, partition); a log's name is its topic's
PROGRESS_EVERY = 100_000


@dataclass(frozen=True)
class KafkaSource:
    kafka: KafkaSettings
    partitions: dict[str, int]  # log -> partition count
    # log -> the topic holding it, when that is not the log's own (a mirror elsewhere)
    topics: dict[str, str] = field(default_factory=dict)

    def topic(self, log: str) -> str:
        return self.topics.get(log, log)


@dataclass(frozen=True)
class FileSource:
    path: Path


Source = KafkaSource | FileSource


@dataclass(frozen=True)
class VerifyOptions:
    tolerate_duplicates: bool = False
    checkpoint_seconds: float = 10.0
    grace: float = 60.0
    pins: Pins = field(default_factory=dict)
    workers: int | None = None  # None: one per CPU, or just one for a small log
    now: datetime | None = None  # the truncation rule's "now"; default: the start, or export time
    producer_heads: dict[Part, int] = field(default_factory=dict)  # published positions


class PartitionSummary(msgspec.Struct):
    log: str
    partition: int
    events: int
    position: int
    head: str
    checkpoints: int
    last_checkpoint: int
    tree_root: str | None
    duplicates_tolerated: int


class Report(msgspec.Struct):
    ok: bool
    source: str
    events: int
    seconds: float
    events_per_second: float
    workers: int
    peak_rss_kib: int  # the largest resident set of this process or any worker
    partitions: list[PartitionSummary]
    findings: list[Finding]
    notes: list[str]


@dataclass
class _Outcome:
    summary: PartitionSummary
    finding: Finding | None
    claims: list[CheckpointClaim]
    keys: list[KeyClaim]
    peak_rss_kib: int


def _peak_rss_kib() -> int:
    """This process's peak resident set. On Linux from VmHWM: getrusage's ru_maxrss
    survives exec, so a process started by a big one would report its parent's peak."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux


def _outcome(check: PartitionCheck) -> _Outcome:
    return _Outcome(
        PartitionSummary(
            check.log,
            check.partition,
            check.events,
            check.position,
            check.head.hex(),
            check.checkpoints,
            check.last_checkpoint,
            check.last_tree_root,
            check.duplicates_tolerated,
        ),
        check.finding,
        check.claims,
        check.keys,
        _peak_rss_kib(),
    )


def _checks(
    parts: list[Part], options: VerifyOptions, where_kind: str
) -> dict[Part, PartitionCheck]:
    return {
        (log, partition): PartitionCheck(
            log,
            partition,
            tolerate_duplicates=options.tolerate_duplicates,
            check_signature=pinned_check(options.pins, log),
            where_kind=where_kind,
        )
        for log, partition in parts
    }


async def _replay(
    source: Source, parts: list[Part], options: VerifyOptions, progress: Callable[[int], None]
) -> list[_Outcome]:
    """Replay `parts` in this process; `progress` is told how many records were read."""
    now = options.now or datetime.now(UTC)
    if isinstance(source, FileSource):
        checks = _checks(parts, options, "line")
        for part, items in file_records(source.path, set(parts)):
            checks[part].feed(items)
            progress(len(items))
    else:
        checks = _checks(parts, options, "offset")
        logs = {source.topic(log): log for log, _ in parts}
        consumer = audit_consumer(source.kafka, "audit")
        await consumer.start()
        try:
            async for (topic, partition), items in read_partitions(
                consumer, [(source.topic(log), p) for log, p in parts]
            ):
                checks[(logs[topic], partition)].feed(items)
                progress(len(items))
        finally:
            await consumer.stop()
    for part, check in checks.items():
        check.finish(
            now, options.checkpoint_seconds, options.grace, options.producer_heads.get(part)
        )
    return [_outcome(check) for check in checks.values()]


def _worker(
    source: Source, parts: list[Part], options: VerifyOptions, out: multiprocessing.Queue[object]
) -> None:
    read = 0

    def progress(n: int) -> None:
        nonlocal read
        read += n
        if read >= PROGRESS_EVERY:
            out.put(("progress", read))
            read = 0

    # This process reads nothing but its share of the audit: records may skip aiokafka's
    # ConsumerRecord (shared/audit/fastfetch.py), and its heap stays flat (memory.py).
    fastfetch.install()
    memory.fixed_mmap_threshold()

    try:
        outcomes = asyncio.run(_replay(source, parts, options, progress))
    except BaseException as exc:
        out.put(("error", f"{type(exc).__name__}: {exc}"))
        return
    out.put(("progress", read))
    out.put(("done", outcomes))


def _share(parts: list[Part], sizes: dict[Part, int], workers: int) -> list[list[Part]]:
    """Partitions spread so that each worker has about as many records: largest first."""
    shares: list[list[Part]] = [[] for _ in range(workers)]
    loads = [0] * workers
    for part in sorted(parts, key=lambda p: -sizes.get(p, 0)):
        i = loads.index(min(loads))
        shares[i].append(part)
        loads[i] += sizes.get(part, 0) + 1  # + 1: sizes unknown (a file), spread evenly
    return [s for s in shares if s]


async def _sizes(source: KafkaSource, parts: list[Part]) -> dict[Part, int]:
    from aiokafka import TopicPartition

    logs = {source.topic(log): log for log, _ in parts}
    consumer = audit_consumer(source.kafka, "audit-sizes")
    await consumer.start()
    try:
        # A topic that is not there is a mistake to report, not an empty log to pass.
        known = await consumer.topics()
        for log, count in source.partitions.items():
            topic = source.topic(log)
            if topic not in known:
                raise ValueError(f"topic {topic} does not exist at {source.kafka.bootstrap}")
            have = len(consumer.partitions_for_topic(topic) or ())
            if have != count:
                raise ValueError(f"topic {topic} has {have} partitions, not {count}")
        ends = await consumer.end_offsets(
            [TopicPartition(source.topic(log), p) for log, p in parts]
        )
        starts = await consumer.beginning_offsets(list(ends))
    finally:
        await consumer.stop()
    return {(logs[tp.topic], tp.partition): ends[tp] - starts[tp] for tp in ends}


async def verify(
    source: Source,
    options: VerifyOptions,
    progress: Callable[[int, int | None], None] | None = None,
) -> Report:
    """Replay every partition of the source; `progress(read, total)` as it goes."""
    started = time.monotonic()
    memory.fixed_mmap_threshold()
    if isinstance(source, FileSource):
        header = read_header(source.path)
        partitions = header.partitions
        if options.now is None:
            options = _with_now(options, header.exported_at)
        label = str(source.path)
    else:
        partitions = source.partitions
        label = ", ".join(
            log if source.topic(log) == log else f"{log} (topic {source.topic(log)})"
            for log in sorted(partitions)
        )
    parts = [(log, p) for log, count in sorted(partitions.items()) for p in range(count)]
    sizes: dict[Part, int] = {}
    total: int | None = None
    if isinstance(source, KafkaSource):
        sizes = await _sizes(source, parts)
        total = sum(sizes.values())
    if options.workers is not None:
        workers = max(1, min(options.workers, len(parts)))
    elif (
        total < 20_000
        if total is not None
        else isinstance(source, FileSource) and source.path.stat().st_size < 16 << 20
    ):
        workers = 1  # starting processes costs more than it saves
    else:
        workers = max(1, min(default_workers(), len(parts)))
    read = 0

    def tell(n: int) -> None:
        nonlocal read
        read += n
        if progress is not None:
            progress(read, total)

    if workers == 1:
        outcomes = await _replay(source, parts, options, tell)
    else:
        outcomes = await _in_workers(source, _share(parts, sizes, workers), options, tell)
    return _report(label, partitions, outcomes, options, workers, time.monotonic() - started)


def _with_now(options: VerifyOptions, exported_at: str) -> VerifyOptions:
    from dataclasses import replace

    from shared.audit.sources import parse_time

    return replace(options, now=parse_time(exported_at))


async def _in_workers(
    source: Source, shares: list[list[Part]], options: VerifyOptions, tell: Callable[[int], None]
) -> list[_Outcome]:
    context = multiprocessing.get_context("spawn")
    out: multiprocessing.Queue[object] = context.Queue()
    procs = [
        context.Process(target=_worker, args=(source, share, options, out), daemon=True)
        for share in shares
    ]
    for proc in procs:
        proc.start()
    outcomes: list[_Outcome] = []
    finished = 0
    try:
        while finished < len(procs):
            try:
                message: tuple[str, Any] = await asyncio.to_thread(out.get, True, 0.5)  # type: ignore[arg-type]
            except queue.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead:
                    raise RuntimeError(f"an audit worker died (exit {dead[0].exitcode})") from None
                continue
            kind, value = message
            if kind == "progress":
                tell(value)
            elif kind == "done":
                outcomes.extend(value)
                finished += 1
            else:
                raise RuntimeError(f"an audit worker failed: {value}")
    finally:
        for proc in procs:
            if proc.is_alive():
                proc.terminate()
            proc.join(timeout=5)
    return outcomes


def _report(
    label: str,
    partitions: dict[str, int],
    outcomes: list[_Outcome],
    options: VerifyOptions,
    workers: int,
    seconds: float,
) -> Report:
    trust = Trust(options.pins)
    findings: dict[Part, Finding] = {
        (o.summary.log, o.summary.partition): o.finding for o in outcomes if o.finding
    }
    for log in sorted({o.summary.log for o in outcomes}):
        mine = [o for o in outcomes if o.summary.log == log]
        announced = [k for o in mine for k in o.keys]
        claims = [c for o in mine for c in o.claims]
        if not options.pins.get(log):
            forged = trust.check_claims(log, partitions[log], claims, announced)
            for partition, finding in forged.items():
                known = findings.get((log, partition))
                if known is None or finding.position < known.position:
                    findings[(log, partition)] = finding
        else:
            trust.keys_of(log, partitions[log], announced)  # notes keys not pinned
    if not options.producer_heads:
        trust.notes.append(
            "the producers' heads were not compared: a log cut at a checkpoint "
            "cannot be told from a complete one"
        )
    events = sum(o.summary.events for o in outcomes)
    ordered = sorted(findings.values(), key=lambda f: (f.log, f.partition, f.position))
    return Report(
        ok=not ordered,
        source=label,
        events=events,
        seconds=round(seconds, 3),
        events_per_second=round(events / seconds) if seconds > 0 else 0.0,
        workers=workers,
        peak_rss_kib=max([_peak_rss_kib(), *(o.peak_rss_kib for o in outcomes)]),
        partitions=sorted((o.summary for o in outcomes), key=lambda s: (s.log, s.partition)),
        findings=ordered,
        notes=trust.notes,
    )


def default_workers() -> int:
    return os.cpu_count() or 1
