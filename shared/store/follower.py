"""Following another service's log into a projection, exactly once.

Each batch is applied in one transaction together with its tracking row (log, partition,
position, hash). Only position `last + 1` is applied, after checking that it links to the
chain head we hold: a duplicate is skipped, a gap (or a record that does not decode or
does not link) stops the partition and is filled from the producer's `GET /v1/log` before
anything after it is applied. No event is ever skipped. Kafka offsets are only a hint
for where to resume; the tracking table is the truth.

Every replica may run a follower: the tracking row is locked for the transaction, so two
followers of one log serialise per partition and the second skips what the first applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import aiohttp
import asyncpg
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.chain import ChainBroken, link
from shared.dbtypes import Conn
from shared.events import Envelope, Event, UnknownEventType
from shared.events.envelope import decode_envelope
from shared.kafka import KafkaSettings, ensure_topics, reader
from shared.store.eventstore import LogSpec

log = logging.getLogger(__name__)


class Projection(Protocol):
    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        """Change the projection for one event, inside the follower's transaction."""


@runtime_checkable
class BatchedProjection(Projection, Protocol):
    """A projection that gathers its changes over a batch and writes them once: `begin` at
    the start of each batch's transaction, `flush` before it commits (a rolled-back batch
    begins again, so nothing gathered is applied twice)."""

    def begin(self) -> None: ...

    async def flush(self, conn: Conn) -> None: ...


@dataclass(frozen=True)
class Record:
    body: bytes
    offset: int | None  # Kafka offset, None when it came from the log API
    hash: bytes | None = None  # the producer's claimed hash, when it sent one


@dataclass
class Applied:
    position: int
    stopped_at: int | None = None  # index of the first record not applied
    want: int | None = None  # set for a gap: the position that record carries


class LogPage(msgspec.Struct):
    class Item(msgspec.Struct):
        position: int
        hash: str
        event: msgspec.Raw

    log: str
    partition: int
    events: list[Item]


@dataclass
class PartitionState:
    position: int = 0
    caught_up: bool = False
    broken: str | None = None
    gaps_filled: int = 0
    duplicates: int = 0


@dataclass
class FollowerStats:
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    applied: int = 0


class LogClient:
    """Reads sealed events from the producing service's `GET /v1/log`."""

    def __init__(self, base_url: str, token: str, session: aiohttp.ClientSession) -> None:
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.session = session

    async def page(self, partition: int, after: int, limit: int = 500) -> list[Record]:
        async with self.session.get(
            f"{self.base_url}/v1/log",
            params={"partition": partition, "after": after, "limit": limit},
            headers={"Authorization": f"Bearer {self.token}"},
            timeout=aiohttp.ClientTimeout(total=15),
        ) as resp:
            resp.raise_for_status()
            page = msgspec.json.decode(await resp.read(), type=LogPage)
        return [Record(bytes(item.event), None, bytes.fromhex(item.hash)) for item in page.events]


class Follower:
    def __init__(
        self,
        pool: asyncpg.Pool,
        source: LogSpec,
        kafka: KafkaSettings,
        projection: Projection,
        catch_up: LogClient,
        *,
        name: str,
    ) -> None:
        self.pool = pool
        self.source = source
        self.kafka = kafka
        self.projection = projection
        self.catch_up = catch_up
        self.name = name
        self.stats = FollowerStats({p: PartitionState() for p in range(source.partitions)})
        self._unknown: set[str] = set()

    @property
    def caught_up(self) -> bool:
        return all(s.caught_up and s.broken is None for s in self.stats.partitions.values())

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                for state in self.stats.partitions.values():
                    state.caught_up = False
                log.warning(
                    "follower %s of %s stopped (%s: %s); retrying",
                    self.name,
                    self.source.name,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _follow(self) -> None:
        await ensure_topics(self.kafka, {self.source.name: self.source.partitions})
        tps = [TopicPartition(self.source.name, p) for p in range(self.source.partitions)]
        async with self.pool.acquire() as conn:
            await conn.executemany(
                "INSERT INTO tracking (log, partition) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                [(self.source.name, p) for p in range(self.source.partitions)],
            )
            hints = {
                r["partition"]: (r["position"], r["kafka_offset"])
                for r in await conn.fetch(
                    "SELECT partition, position, kafka_offset FROM tracking WHERE log = $1",
                    self.source.name,
                )
            }
        consumer = reader(self.kafka, f"follow-{self.name}")
        await consumer.start()
        try:
            consumer.assign(tps)
            for tp in tps:
                position, offset = hints[tp.partition]
                self.stats.partitions[tp.partition].position = position
                if offset >= 0:
                    consumer.seek(tp, offset + 1)
                else:
                    await consumer.seek_to_beginning(tp)
            while True:
                batches = await consumer.getmany(timeout_ms=1000, max_records=1000)
                for tp, messages in batches.items():
                    records = [Record(m.value, m.offset, _hash_header(m.headers)) for m in messages]
                    try:
                        await self._consume(tp.partition, records)
                    except ChainBroken as broken:
                        # Never skip, never apply past it: this partition stops until an
                        # operator looks (docs/operations.md); the others go on.
                        self.stats.partitions[tp.partition].broken = str(broken)
                        log.error("%s; this partition is paused", broken)
                        consumer.pause(tp)
                for tp in tps:
                    await self._note_lag(consumer, tp)
        finally:
            with suppress(Exception):
                await consumer.stop()

    async def _note_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        state = self.stats.partitions[tp.partition]
        highwater = consumer.highwater(tp)
        if highwater is None:
            return
        state.caught_up = await consumer.position(tp) >= highwater

    async def _consume(self, partition: int, records: Sequence[Record]) -> None:
        state = self.stats.partitions[partition]
        while records:
            result = await self._apply(partition, records)
            state.position = result.position
            if result.stopped_at is None:
                return
            if result.want is not None:
                # A gap: fill it from the producer, then apply the record that revealed it.
                await self._fill(partition, result.want - 1)
                records = records[result.stopped_at :]
            else:
                # A record we cannot use: take its place in the chain from the producer.
                await self._fill(partition, result.position + 1)
                records = records[result.stopped_at + 1 :]

    async def _fill(self, partition: int, target: int) -> None:
        state = self.stats.partitions[partition]
        delay = 0.1
        while state.position < target:
            try:
                page = await self.catch_up.page(
                    partition, state.position, limit=min(500, target - state.position)
                )
            except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
                log.warning(
                    "%s[%d]: catch-up from the log API failed (%s); retrying",
                    self.source.name,
                    partition,
                    exc,
                )
                page = []
            if page:
                result = await self._apply(partition, page)
                if result.position > state.position:
                    state.gaps_filled += result.position - state.position
                    state.position = result.position
                    delay = 0.1
                    continue
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _apply(self, partition: int, records: Sequence[Record]) -> Applied:
        state = self.stats.partitions[partition]
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT position, hash, kafka_offset FROM tracking "
                "WHERE log = $1 AND partition = $2 FOR UPDATE",
                self.source.name,
                partition,
            )
            assert row is not None
            position, head, offset = row["position"], bytes(row["hash"]), row["kafka_offset"]
            batched = self.projection if isinstance(self.projection, BatchedProjection) else None
            if batched is not None:
                batched.begin()
            applied = 0
            stopped: int | None = None
            want: int | None = None
            for index, record in enumerate(records):
                try:
                    envelope = decode_envelope(record.body)
                except msgspec.DecodeError:
                    log.error(
                        "%s[%d]: a record at offset %s does not decode; filling from the log API",
                        self.source.name,
                        partition,
                        record.offset,
                    )
                    stopped = index
                    break
                if envelope.log != self.source.name or envelope.partition != partition:
                    log.error(
                        "%s[%d]: a record claims to be %s[%d]; ignoring it",
                        self.source.name,
                        partition,
                        envelope.log,
                        envelope.partition,
                    )
                    continue
                if envelope.position <= position:
                    state.duplicates += 1
                    if record.offset is not None and envelope.position == position:
                        offset = max(offset, record.offset)
                    continue
                if envelope.position > position + 1:
                    stopped, want = index, envelope.position
                    break
                digest = link(head, record.body)
                if envelope.prev_hash != head.hex():
                    # Either this record or the one we applied last is not the producer's.
                    if record.offset is None:
                        raise ChainBroken(
                            self.source.name,
                            partition,
                            envelope.position,
                            "the producer's log does not link to the head this projection holds",
                        )
                    log.error(
                        "%s[%d]: position %d from Kafka does not link to the head; "
                        "taking it from the log API",
                        self.source.name,
                        partition,
                        envelope.position,
                    )
                    stopped = index
                    break
                if record.offset is not None and record.hash != digest:
                    # The relay sends each record's chain hash; bytes that do not match it
                    # (or a record without it) were damaged on the way: use the producer's.
                    log.error(
                        "%s[%d]: position %d from Kafka does not match its hash; taking "
                        "it from the log API",
                        self.source.name,
                        partition,
                        envelope.position,
                    )
                    stopped = index
                    break
                if record.offset is None and record.hash is not None and record.hash != digest:
                    raise ChainBroken(
                        self.source.name,
                        partition,
                        envelope.position,
                        "the log API's hash does not match its bytes",
                    )
                try:
                    event = envelope.event()
                except msgspec.ValidationError as exc:
                    # A known type whose data breaks its schema: a producer bug. Applying
                    # around it would be wrong and skipping it forbidden: stop here.
                    raise ChainBroken(
                        self.source.name,
                        partition,
                        envelope.position,
                        f"{envelope.type} does not match its schema: {exc}",
                    ) from exc
                except UnknownEventType as exc:
                    if str(exc) not in self._unknown:
                        self._unknown.add(str(exc))
                        log.warning(
                            "%s: event type %s is unknown to this build; tracked, not projected",
                            self.source.name,
                            exc,
                        )
                else:
                    await self.projection.apply(conn, envelope, event)
                position, head = envelope.position, digest
                if record.offset is not None:
                    offset = record.offset
                applied += 1
            if batched is not None and applied:
                await batched.flush(conn)
            if applied or offset != row["kafka_offset"]:
                await conn.execute(
                    "UPDATE tracking SET position = $3, hash = $4, kafka_offset = $5, "
                    "updated_at = now() WHERE log = $1 AND partition = $2",
                    self.source.name,
                    partition,
                    position,
                    head,
                    offset,
                )
        self.stats.applied += applied
        return Applied(position, stopped, want)


def _hash_header(headers: Sequence[tuple[str, bytes]] | None) -> bytes | None:
    for name, value in headers or ():
        if name == "hash":
            with suppress(ValueError):
                return bytes.fromhex(value.decode())
    return None
