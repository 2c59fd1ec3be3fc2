"""Following another service's log into a projection, exactly once, and only what the
producer wrote.

A record from Kafka is applied only when the producer vouches for it: it lies on the hash
chain that ends at a record whose batch signature verifies with one of the producer's log
keys (shared/store/origin.py). Records waiting for a signature wait in memory; a record
that no signature covers within `patience` is replaced by the producer's own from its
authenticated `GET /v1/log`, and a record that conflicts with the producer's is reported
as not the producer's and never applied. The topic is therefore not a trust boundary:
whoever can produce to it can delay a partition by `patience` at most, never change it.

Each batch is applied in one transaction together with its tracking row (log, partition,
position, hash). Only position `last + 1` is applied, after checking that it links to the
chain head we hold: a duplicate is skipped, a gap is filled from the log API before
anything after it is applied. An authenticated record that does not link to what we hold
means the producer's log forked: the partition stops (`ChainBroken`). Kafka offsets are
only a hint for where to resume; the tracking table is the truth.

Every replica may run a follower: the tracking row is locked for the transaction, so two
followers of one log serialise per partition and the second skips what the first applied.
"""

from __future__ import annotations

import asyncio
import logging
from collections import OrderedDict
from collections.abc import Sequence
from contextlib import suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
import msgspec
from aiokafka import AIOKafkaConsumer, TopicPartition

from shared.chain import ChainBroken
from shared.kafka import KafkaSettings, ensure_topics, reader
from shared.store.eventstore import LogSpec
from shared.store.log_client import LogClient, Page
from shared.store.origin import Item, LogKeys, settle
from shared.store.projection import Projection
from shared.store.records import record_item
from shared.store.tracking import Applied, apply_tracked

log = logging.getLogger(__name__)

PATIENCE = 1.0  # seconds a record waits for a signature before the log API decides
MAX_WAITING = 20_000  # records held per partition waiting for a signature
REMEMBERED = 4_096  # hashes of recently applied positions, to judge duplicates by


@dataclass
class PartitionState:
    position: int = 0
    caught_up: bool = False
    broken: str | None = None
    gaps_filled: int = 0
    duplicates: int = 0
    rejected: int = 0  # records on the topic that were not the producer's
    waiting: int = 0  # records held for a signature


@dataclass
class FollowerStats:
    partitions: dict[int, PartitionState] = field(default_factory=dict)
    applied: int = 0


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
        patience: float = PATIENCE,
    ) -> None:
        self.pool = pool
        self.source = source
        self.kafka = kafka
        self.projection = projection
        self.catch_up = catch_up
        self.name = name
        self.patience = patience
        self.keys = LogKeys()
        self.stats = FollowerStats({p: PartitionState() for p in range(source.partitions)})
        self._unknown: set[str] = set()
        self._waiting: dict[int, list[Item]] = {p: [] for p in range(source.partitions)}
        self._waiting_since: dict[int, float] = {}
        self._recent: dict[int, OrderedDict[int, bytes]] = {
            p: OrderedDict() for p in range(source.partitions)
        }
        self._round = asyncio.Event()  # set, and replaced, at the end of each fetch round

    @property
    def caught_up(self) -> bool:
        """As of the last fetch round: nothing Kafka held then is missing here."""
        return all(s.caught_up and s.broken is None for s in self.stats.partitions.values())

    @property
    def version(self) -> int:
        """Grows whenever this projection moves (by this replica's follower or another's)."""
        return sum(s.position for s in self.stats.partitions.values())

    async def next_round(self, timeout: float) -> None:
        """Until the follower has finished one more fetch round, or `timeout` seconds."""
        with suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._round.wait()), timeout)

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
        try:
            self.keys.update(await self.catch_up.log_keys(self.source.name))
        except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
            # Asked again as soon as a signature names a key (the producer may be starting).
            log.info("%s: the producer's log keys are not readable yet (%s)", self.source.name, exc)
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
        for waiting in self._waiting.values():
            waiting.clear()
        self._waiting_since.clear()
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
                # While records wait for a signature, come back soon enough to judge them.
                wait_ms = 200 if self._waiting_since else 1000
                batches = await consumer.getmany(timeout_ms=wait_ms, max_records=1000)
                for tp in tps:
                    messages = batches.get(tp, [])
                    if not messages and tp.partition not in self._waiting_since:
                        continue
                    try:
                        await self._consume(tp.partition, messages)
                    except ChainBroken as broken:
                        # Never skip, never apply past it: this partition stops until an
                        # operator looks (docs/operations.md); the others go on.
                        self.stats.partitions[tp.partition].broken = str(broken)
                        self._waiting[tp.partition].clear()
                        self._waiting_since.pop(tp.partition, None)
                        log.error("%s; this partition is paused", broken)
                        consumer.pause(tp)
                for tp in tps:
                    await self._note_lag(consumer, tp)
                done, self._round = self._round, asyncio.Event()
                done.set()
        finally:
            with suppress(Exception):
                await consumer.stop()

    async def _note_lag(self, consumer: AIOKafkaConsumer, tp: TopicPartition) -> None:
        state = self.stats.partitions[tp.partition]
        state.waiting = len(self._waiting[tp.partition])
        highwater = consumer.highwater(tp)
        if highwater is None:
            return
        state.caught_up = await consumer.position(tp) >= highwater and not state.waiting

    async def _consume(self, partition: int, messages: Sequence[Any]) -> None:
        waiting = self._waiting[partition]
        for message in messages:
            item = record_item(self.source.name, partition, message)
            if item is not None:
                waiting.append(item)
        if waiting:
            self._waiting_since.setdefault(partition, asyncio.get_running_loop().time())
        if len(waiting) > MAX_WAITING:
            # Nothing signed has come for a long run of records: let the log API decide.
            await self._without_signature(partition)
        await self._settle(partition)

    async def _settle(self, partition: int) -> None:
        waiting = self._waiting[partition]
        if not waiting:
            self._waiting_since.pop(partition, None)
            return
        await self._refresh_keys(waiting)
        state = self.stats.partitions[partition]

        def signed(item: Item) -> bool:
            return self.keys.valid(self.source.name, partition, item)

        verdict = settle(waiting, state.position, signed)
        if verdict.signed_at is None:
            since = self._waiting_since.get(partition, 0.0)
            if asyncio.get_running_loop().time() - since >= self.patience:
                await self._without_signature(partition)
            return
        # Records Kafka lost below the signed chain: the producer's own fill their places,
        # and the chain walks on from them through what did arrive.
        fetched: list[Item] = []
        while verdict.lowest is not None and verdict.lowest > state.position + 1:
            missing = verdict.lowest - 1
            below = max(
                (i.position for i in verdict.uncovered if i.position < missing),
                default=state.position,
            )
            page = await self._page(partition, max(below, state.position), missing)
            if not page.items:
                break  # another replica moved this partition on: apply what is left
            fetched.extend(page.items)
            state.gaps_filled += len(page.items)
            verdict = settle(waiting, state.position, signed, fetched)
        state.duplicates += verdict.duplicates
        for item in verdict.not_the_producers:
            self._reject(partition, item, "the producer signed another record at this position")
        if verdict.apply:
            await self._apply_all(partition, verdict.apply)
        self._judge(partition, verdict.uncovered)
        self._waiting[partition] = verdict.waiting
        if verdict.waiting:
            self._waiting_since[partition] = asyncio.get_running_loop().time()
        else:
            self._waiting_since.pop(partition, None)

    async def _refresh_keys(self, waiting: Sequence[Item]) -> None:
        unknown = {i.key_id for i in waiting if i.key_id and i.key_id not in self.keys.known()}
        if any(self.keys.due(key_id) for key_id in unknown):
            try:
                self.keys.update(await self.catch_up.log_keys(self.source.name))
            except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
                log.warning("%s: cannot read the producer's log keys (%s)", self.source.name, exc)

    async def _without_signature(self, partition: int) -> None:
        """Records no valid signature covered: take their positions from the producer, then
        judge each against what it says."""
        waiting, self._waiting[partition] = self._waiting[partition], []
        self._waiting_since.pop(partition, None)
        head = await self._fill(partition, max(i.position for i in waiting))
        self._judge(partition, waiting, head)

    def _judge(self, partition: int, items: Sequence[Item], head: int | None = None) -> None:
        """Items no signature covered, once the follower holds the producer's records of
        their positions: an identical one is a duplicate, any other is not the producer's."""
        state = self.stats.partitions[partition]
        recent = self._recent[partition]
        for item in items:
            if head is not None and item.position > head:
                self._reject(partition, item, f"the producer's log ends at position {head}")
            elif item.position > state.position:
                continue  # still ahead of us: the producer's own will come
            elif recent.get(item.position) == item.digest:
                state.duplicates += 1
            elif item.position in recent:
                self._reject(partition, item, "the producer's record at this position differs")
            else:
                log.warning(
                    "%s[%d]: position %d at offset %s came without a signature and is older "
                    "than the hashes kept here; skipped as a duplicate without checking",
                    self.source.name,
                    partition,
                    item.position,
                    item.offset,
                )
                state.duplicates += 1

    def _reject(self, partition: int, item: Item, why: str) -> None:
        self.stats.partitions[partition].rejected += 1
        log.error(
            "%s[%d]: the record at offset %s claiming position %d is not the producer's (%s); "
            "not applied. Someone who can write to the topic wrote it: see docs/operations.md",
            self.source.name,
            partition,
            item.offset,
            item.position,
            why,
        )

    async def _apply_all(self, partition: int, items: Sequence[Item]) -> None:
        """Apply authenticated items, filling from the log API where they leave a gap."""
        state = self.stats.partitions[partition]
        while items:
            result = await self._apply(partition, items)
            state.position = result.position
            if result.want is None:
                return
            await self._fill(partition, result.want - 1)
            items = [i for i in items if i.position > state.position]

    async def _page(self, partition: int, after: int, through: int) -> Page:
        """The producer's records after `after` through `through` (as many as it has), asked
        for again until it answers."""
        delay = 0.1
        while True:
            try:
                page = await self.catch_up.page(partition, after, limit=min(500, through - after))
            except (aiohttp.ClientError, TimeoutError, msgspec.DecodeError) as exc:
                log.warning(
                    "%s[%d]: catch-up from the log API failed (%s); retrying",
                    self.source.name,
                    partition,
                    exc,
                )
            else:
                if page.items or page.head <= after:
                    return Page([i for i in page.items if i.position <= through], page.head)
                # sealed there but not served yet: ask again
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def _fill(self, partition: int, target: int) -> int:
        """Apply the producer's records up to `target`, or to the end of its log if that
        comes first; returns the producer's head."""
        state = self.stats.partitions[partition]
        head = target
        while state.position < min(target, head):
            page = await self._page(partition, state.position, target)
            head = page.head
            if not page.items:
                break  # its log ends where we are
            before = state.position
            result = await self._apply(partition, page.items)
            state.gaps_filled += max(0, result.position - before)
            state.position = result.position
        return head

    async def _apply(self, partition: int, items: Sequence[Item]) -> Applied:
        """Apply authenticated items in one transaction, from the tracked head on."""
        applied = await apply_tracked(
            self.pool, self.source.name, partition, items, self.projection, self._unknown
        )
        recent = self._recent[partition]
        for item in items:
            if item.position <= applied.position:
                recent[item.position] = item.digest
        while len(recent) > REMEMBERED:
            recent.popitem(last=False)
        self.stats.applied += applied.count
        return applied
