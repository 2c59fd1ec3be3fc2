"""The relay: one leader per log seals committed events and publishes them in position order.

Leadership is a PostgreSQL advisory lock held on the relay's own connection, so any number
of replicas may run one; if the connection dies the lock goes with it. Publishing is
`acks=all`, in position order per partition; the mark of what was published is written
only after the broker acknowledged. Delivery is at-least-once: consumers skip duplicates.

If the topic lost records (a wiped Tansu, a lost cluster) the relay sees it *before* it
publishes anything more into it: each publish round first checks, with the partitions' end
offsets (and the record itself where those are unclear), that the topic still holds what
was published; idle, it checks once a second. A partition that lost records is published
again from position 1, in position order, before anything newer (new events have higher
positions), and a republish interrupted by another broker error resumes from the last
acknowledged mark. Only a wipe that lands between that check and the send puts records
ahead of the republished log; they are byte-identical copies of records that come again at
their places, which `qunma audit verify --tolerate-duplicates` accepts and counts.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from contextlib import suppress
from dataclasses import dataclass

import asyncpg
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from shared.clock import utcnow
from shared.crypto.kek import Kek
from shared.crypto.signing import SigningKey
from shared.dbtypes import Conn
from shared.events.envelope import decode_envelope
from shared.kafka import KafkaSettings, ensure_topics, producer, reader
from shared.store.eventstore import LogSpec
from shared.store.log_keys import ensure_log_key
from shared.store.origin import batch_headers
from shared.store.sealing import Checkpointer, CheckpointPolicy, seal_batch

log = logging.getLogger(__name__)


# One index probe when idle, instead of a locking seal transaction every poll. A partition
# with events after its last checkpoint is due one `seconds` after it ($1; NULL: never).
_WORK_LEFT = """
SELECT EXISTS (SELECT 1 FROM events WHERE position IS NULL)
    OR EXISTS (SELECT 1 FROM log_partitions WHERE published_position < sealed_position
                                               OR tree_size < sealed_position)
    OR EXISTS (SELECT 1 FROM log_partitions WHERE sealed_position > checkpoint_position
               AND checkpoint_at <= now() - make_interval(secs => $1))
"""


@dataclass(frozen=True)
class Checkpoints:
    """What the relay needs to sign checkpoints: when, and the key's sealing and owner."""

    policy: CheckpointPolicy
    kek: Kek
    service: str


@dataclass
class RelayStats:
    leader: bool = False
    sealed: int = 0
    published: int = 0
    republished_partitions: int = 0


# A signature every this many records of a batch, not only on its last: a follower applies
# what a signature covers, so a batch split across its fetches is applied as it arrives.
SIGN_EVERY = 200


def relay_lock_key(log_name: str) -> int:
    return zlib.crc32(f"qunma.relay:{log_name}".encode())


class Relay:
    def __init__(
        self,
        dsn: str,
        log_spec: LogSpec,
        kafka: KafkaSettings,
        *,
        batch: int = 1000,
        idle_wait: float = 0.02,
        probe_interval: float = 1.0,
        linger: float = 0.0,
        checkpoints: Checkpoints | None = None,
    ) -> None:
        self.dsn = dsn
        self.linger = linger
        self.log = log_spec
        self.kafka = kafka
        self.batch = batch
        self.idle_wait = idle_wait
        self.probe_interval = probe_interval
        self.checkpoints = checkpoints
        self.stats = RelayStats()
        self._wake = asyncio.Event()
        self._batch_key: SigningKey | None = None
        # partition -> offset of the first record of the last batch published (this lead):
        # while the topic holds that batch its end offset is past it, even on Tansu.
        self._batch_base: dict[int, int] = {}

    def wake(self) -> None:
        """Called when this process committed events: seal them now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        backoff = 0.2
        while True:
            try:
                conn = await asyncpg.connect(self.dsn)
                try:
                    got = await conn.fetchval(
                        "SELECT pg_try_advisory_lock($1)", relay_lock_key(self.log.name)
                    )
                    if not got:
                        await asyncio.sleep(1.0)  # another replica leads; wait to take over
                        continue
                    log.info("relay for %s is the leader", self.log.name)
                    self.stats.leader = True
                    backoff = 0.2
                    await self._lead(conn)
                finally:
                    self.stats.leader = False
                    with suppress(Exception):
                        await asyncio.shield(conn.close())
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning(
                    "relay for %s stopped (%s: %s); retrying",
                    self.log.name,
                    type(exc).__name__,
                    exc,
                )
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    async def _lead(self, conn: Conn) -> None:
        await ensure_topics(self.kafka, {self.log.name: self.log.partitions})
        signer: Checkpointer | None = None
        self._batch_key = None
        self._batch_base = {}
        if self.checkpoints is not None:
            key = await ensure_log_key(
                conn, self.log, self.checkpoints.kek, self.checkpoints.service, utcnow()
            )
            signer = Checkpointer(self.checkpoints.policy, key)
            self._batch_key = key  # also vouches for each batch it publishes
        due_after = signer.policy.seconds if signer else None
        prod = producer(self.kafka)
        probe = reader(self.kafka, "relay-probe")
        try:
            await prod.start()
            await probe.start()
            await self._probe(conn, probe)
            next_probe = asyncio.get_running_loop().time() + self.probe_interval
            while True:
                self._wake.clear()
                if await conn.fetchval(_WORK_LEFT, due_after):
                    sealed = await seal_batch(conn, self.log, self.batch, signer)
                    self.stats.sealed += sealed
                    published = await self._publish(conn, prod, probe)
                    self.stats.published += published
                    if sealed or published:
                        continue
                now = asyncio.get_running_loop().time()
                if now >= next_probe:
                    await self._probe(conn, probe)
                    next_probe = now + self.probe_interval
                with suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.idle_wait)
                    # Woken by a commit: let a few more arrive, and seal them in one batch.
                    await asyncio.sleep(self.linger)
        finally:
            with suppress(Exception):
                await probe.stop()
            with suppress(Exception):
                await prod.stop()

    async def _publish(self, conn: Conn, prod: AIOKafkaProducer, probe: AIOKafkaConsumer) -> int:
        marks = await self._marks(conn, "published_position < sealed_position")
        if not marks:
            return 0
        # Nothing new goes into a partition that lost what was published: it is published
        # again from position 1 first (its mark is reset, so this round starts there).
        if await self._probe(conn, probe, marks):
            marks = await self._marks(conn, "published_position < sealed_position")
        batches = []
        for mark in marks:
            rows = await conn.fetch(
                "SELECT position, kafka_key, body, hash FROM events "
                "WHERE partition = $1 AND position > $2 ORDER BY position LIMIT $3",
                mark["partition"],
                mark["published_position"],
                self.batch,
            )
            last = len(rows) - 1
            sends = [
                await prod.send(
                    self.log.name,
                    value=row["body"],
                    key=row["kafka_key"].encode(),
                    partition=mark["partition"],
                    headers=self._headers(
                        mark["partition"],
                        row,
                        index == last or index % SIGN_EVERY == SIGN_EVERY - 1,
                    ),
                )
                for index, row in enumerate(rows)
            ]
            batches.append((mark, rows, sends))
        count = 0
        for mark, rows, sends in batches:
            metadata = await asyncio.wait_for(
                asyncio.gather(*sends), self.kafka.request_timeout_ms / 1000 + 5
            )
            partition = mark["partition"]
            if mark["published_position"] > 0 and metadata[0].offset <= mark["published_offset"]:
                # Offsets only grow in a topic that keeps its records: it was wiped between
                # the check above and the send. What was just sent stands before the log
                # republished now, as early copies of records that come again.
                log.error(
                    "%s[%d]: positions %d-%d went into a topic wiped a moment before; they "
                    "stand ahead of the log republished now, as exact early copies",
                    self.log.name,
                    partition,
                    rows[0]["position"],
                    rows[-1]["position"],
                )
                await self._republish_from_start(conn, partition, "offsets went backwards")
                continue
            self._batch_base[partition] = metadata[0].offset
            await conn.execute(
                "UPDATE log_partitions SET published_position = $2, published_offset = $3 "
                "WHERE partition = $1",
                partition,
                rows[-1]["position"],
                metadata[-1].offset,
            )
            count += len(rows)
        return count

    def _headers(self, partition: int, row: asyncpg.Record, last: bool) -> list[tuple[str, bytes]]:
        """Every record carries its chain hash; the batch's last one also the log key's
        signature over it, which vouches for the chain up to there (shared/store/origin.py)."""
        headers = [("hash", bytes(row["hash"]).hex().encode())]
        if last and self._batch_key is not None:
            headers += batch_headers(
                self._batch_key, self.log.name, partition, row["position"], bytes(row["hash"])
            )
        return headers

    async def _marks(self, conn: Conn, where: str) -> list[asyncpg.Record]:
        rows: list[asyncpg.Record] = await conn.fetch(
            "SELECT partition, published_position, published_offset FROM log_partitions "
            f"WHERE {where} ORDER BY partition"
        )
        return rows

    async def _probe(
        self,
        conn: Conn,
        probe: AIOKafkaConsumer,
        marks: list[asyncpg.Record] | None = None,
    ) -> bool:
        """Check that each partition (of `marks`, else every one published to) still holds
        the last batch published; republish those that do not. True if any did not."""
        if marks is None:
            marks = await self._marks(conn, "published_position > 0")
        marks = [m for m in marks if m["published_position"] > 0]
        if not marks:
            return False
        tps = [TopicPartition(self.log.name, m["partition"]) for m in marks]
        try:
            ends = await asyncio.wait_for(probe.end_offsets(tps), 10)
        except (KafkaError, TimeoutError) as exc:
            log.warning("cannot read the end of %s (%s); recreating it", self.log.name, exc)
            await ensure_topics(self.kafka, {self.log.name: self.log.partitions})
            ends = await asyncio.wait_for(probe.end_offsets(tps), 10)
        lost = False
        for mark, tp in zip(marks, tps, strict=True):
            base = self._batch_base.get(tp.partition)
            if ends[tp] > (base if base is not None else mark["published_offset"]):
                continue
            # An empty partition lost everything. Otherwise Tansu may report the base offset
            # of the last batch + 1 as the end: look at the record itself before deciding.
            if ends[tp] == 0 or not await self._holds(
                probe, tp, mark["published_offset"], mark["published_position"]
            ):
                await self._republish_from_start(conn, tp.partition, "the topic lost records")
                lost = True
        return lost

    async def _holds(
        self, probe: AIOKafkaConsumer, tp: TopicPartition, offset: int, position: int
    ) -> bool:
        probe.assign([tp])
        probe.seek(tp, offset)
        with suppress(TimeoutError):
            async with asyncio.timeout(5):
                while True:
                    batch = await probe.getmany(tp, timeout_ms=500)
                    records = batch.get(tp, [])
                    if not records:
                        hw = probe.highwater(tp)
                        if hw is not None and hw <= offset:
                            return False
                        continue
                    for record in records:
                        if record.offset == offset:
                            try:
                                return decode_envelope(record.value).position == position
                            except Exception:
                                return False
                        if record.offset > offset:
                            return False
        return False

    async def _republish_from_start(self, conn: Conn, partition: int, why: str) -> None:
        log.warning(
            "%s[%d]: %s (broker wiped?); republishing from position 1",
            self.log.name,
            partition,
            why,
        )
        self.stats.republished_partitions += 1
        self._batch_base.pop(partition, None)
        await ensure_topics(self.kafka, {self.log.name: self.log.partitions})
        await conn.execute(
            "UPDATE log_partitions SET published_position = 0, published_offset = -1 "
            "WHERE partition = $1",
            partition,
        )
