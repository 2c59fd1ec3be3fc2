"""`qunma audit replay --into DSN`: the redeemer's state rebuilt from the logs alone, and
compared with the live one.

1. A consistent snapshot of the live redeemer database (one REPEATABLE READ transaction,
   taken when no committed event is waiting to be sealed): its tables, how far its
   projection applied the issuer's log (`tracking`), and how far its own log is sealed.
2. Into an empty database: the redeemer's migrations, then the issuer's log up to exactly
   those positions through the live projection's own code (issuer.py), then the
   redeemer's log up to its sealed head through `DecisionProjection` (decisions.py), both
   read from Kafka from offset 0.
3. The same tables from both, compared row by row. People are compared by pseudonym
   (`person`): a user id or a name is personal data, and may be erased on one side only.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import msgspec
from aiokafka import TopicPartition

from services.redeemer.projections.decisions import DecisionProjection, Reveal
from services.redeemer.projections.issuer import IssuerProjection
from services.redeemer.schema import functions, migrations
from shared.audit.sources import audit_consumer
from shared.crypto.kek import Kek, KekError
from shared.crypto.personal import PersonKey, unseal
from shared.db import connect_retrying, migrate_database
from shared.dbtypes import Conn
from shared.events import UnknownEventType
from shared.events.envelope import decode_envelope
from shared.events.personal import Sealed
from shared.kafka import KafkaSettings
from shared.store.projection import Projection

# What is compared: every row a projection of the logs must give back, in a fixed order.
TABLES: dict[str, str] = {
    "api_keys": "SELECT key_id, tenant_id, key_hash, scopes, revoked, rate_per_second, rate_burst "
    "FROM api_keys ORDER BY 1",
    "signing_keys": "SELECT key_id, tenant_id, public_key FROM signing_keys ORDER BY 1",
    "groups": "SELECT group_id, tenant_id, name, max_members, profile, timezone, members, "
    "reserved, verified_joins FROM groups ORDER BY 1",
    "codes": "SELECT code_id, tenant_id, group_id, key_id, issued_at, expires_at, max_scans, "
    "status, revoked_at, revoke_reason, superseded_at, not_before, daily_scan_limit, "
    "verification_mode, invite_code_hash, phone_last4, ip_allowlist::text[], geo_lat, geo_lon, "
    "geo_radius_m, bind_device, fallback_url, channel, scans_used FROM codes ORDER BY 1",
    "live_codes": "SELECT live_code_id, tenant_id, key_id, name, group_ids, strategy, "
    "switch_at, rules::text, max_groups, fallback_url, channel, status, revoked_at "
    "FROM live_codes ORDER BY 1",
    "code_daily_scans": "SELECT code_id, day, scans FROM code_daily_scans ORDER BY 1, 2",
    "memberships": "SELECT group_id, person, joined_at, code_id, scan_id, verification "
    "FROM memberships ORDER BY 1, 2",
    "join_requests": "SELECT request_id, scan_id, tenant_id, group_id, code_id, live_code_id, "
    "person, mode, status, created_at, decided_at, decided_by, decline_reason "
    "FROM join_requests ORDER BY 1",
    "scan_facts": "SELECT scan_id, tenant_id, code_id, live_code_id, group_id, channel, "
    "outcome, reason, at, joined_at FROM scan_facts ORDER BY 1",
}
# The columns that identify a row, for telling "changed" from "only on one side".
KEYS: dict[str, int] = {"code_daily_scans": 2, "memberships": 2}

Rows = dict[str, list[tuple[Any, ...]]]


@dataclass(frozen=True)
class Snapshot:
    issuer: dict[int, int]  # partition -> position the live projection applied
    redeemer: dict[int, int]  # partition -> sealed position
    tables: Rows


async def dump(conn: Conn) -> Rows:
    return {name: [tuple(r) for r in await conn.fetch(sql)] for name, sql in TABLES.items()}


async def snapshot(dsn: str, issuer_log: str, timeout: float = 30.0) -> Snapshot:
    """The live tables and log positions, all as of one moment with nothing unsealed."""
    conn = await connect_retrying(dsn)
    try:
        deadline = time.monotonic() + timeout
        while True:
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                waiting = await conn.fetchval("SELECT count(*) FROM events WHERE position IS NULL")
                if not waiting:
                    issuer = {
                        r["partition"]: r["position"]
                        for r in await conn.fetch(
                            "SELECT partition, position FROM tracking WHERE log = $1",
                            issuer_log,
                        )
                    }
                    redeemer = {
                        r["partition"]: r["sealed_position"]
                        for r in await conn.fetch(
                            "SELECT partition, sealed_position FROM log_partitions"
                        )
                    }
                    return Snapshot(issuer, redeemer, await dump(conn))
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the redeemer always had committed events waiting to be sealed for "
                    f"{timeout:.0f} s: is its relay running?"
                )
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


class _Head(msgspec.Struct):
    position: int


_head = msgspec.json.Decoder(_Head)


async def read_until(
    kafka: KafkaSettings, topic: str, targets: dict[int, int], timeout: float = 60.0
) -> AsyncIterator[tuple[int, list[bytes]]]:
    """Each partition's records, positions 1 … target in order, waiting for ones the relay
    has sealed but not published yet. As a follower does, it takes only the next position:
    a duplicate, or a record that came early (before a republished log began), is skipped;
    whether the log is sound is for `qunma audit verify` to say."""
    wanted = {p: t for p, t in targets.items() if t > 0}
    if not wanted:
        return
    consumer = audit_consumer(kafka, "audit-replay")
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in sorted(wanted)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        reached = dict.fromkeys(wanted, 0)
        deadline = time.monotonic() + timeout
        while any(reached[p] < wanted[p] for p in wanted):
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            for tp, records in batch.items():
                bodies: list[bytes] = []
                for record in records:
                    position = _head.decode(record.value).position
                    if position != reached[tp.partition] + 1 or position > wanted[tp.partition]:
                        continue  # a duplicate, an early copy, or past the snapshot
                    reached[tp.partition] = position
                    bodies.append(record.value)
                if bodies:
                    deadline = time.monotonic() + timeout
                    yield tp.partition, bodies
            if time.monotonic() > deadline:
                missing = {p: reached[p] + 1 for p in wanted if reached[p] < wanted[p]}
                raise TimeoutError(
                    f"{topic} did not reach the snapshot's positions: the next position "
                    f"never came {missing}; run `qunma audit verify`"
                )
    finally:
        await consumer.stop()


async def _apply(
    conn: Conn,
    projection: Projection,
    kafka: KafkaSettings,
    topic: str,
    targets: dict[int, int],
    progress: Callable[[int], None],
) -> int:
    applied = 0
    async for _, bodies in read_until(kafka, topic, targets):
        async with conn.transaction():
            for body in bodies:
                envelope = decode_envelope(body)
                try:
                    event = envelope.event()
                except UnknownEventType:
                    continue
                await projection.apply(conn, envelope, event)
        applied += len(bodies)
        progress(len(bodies))
    return applied


class KeyRing:
    """Person keys read from the live redeemer (with its KEK), to reveal sealed values."""

    def __init__(self, kek: Kek | None, wrapped: dict[str, bytes]) -> None:
        self.kek = kek
        self.wrapped = wrapped
        self._open: dict[str, bytes] = {}

    @classmethod
    async def load(cls, dsn: str, kek: Kek | None) -> KeyRing:
        if kek is None:
            return cls(None, {})
        conn = await connect_retrying(dsn)
        try:
            rows = await conn.fetch("SELECT key_id, wrapped FROM person_keys")
        finally:
            await conn.close()
        ring = cls(kek, {r["key_id"]: bytes(r["wrapped"]) for r in rows})
        if rows:  # a wrong KEK is an operator's mistake to name, not values to hide
            try:
                ring.secret(rows[0]["key_id"])
            except KekError:
                raise KekError("this KEK does not open the redeemer's person keys") from None
        return ring

    def secret(self, key_id: str) -> bytes | None:
        if self.kek is None or key_id not in self.wrapped:
            return None
        found = self._open.get(key_id)
        if found is None:
            found = PersonKey.unwrap(key_id, self.wrapped[key_id], self.kek).secret
            self._open[key_id] = found
        return found

    def reveal(self, sealed: Sealed, field: str) -> str | None:
        return unseal(sealed, field, self.secret(sealed.k))


async def rebuild(
    into: str,
    kafka: KafkaSettings,
    issuer_topic: str,
    redeemer_topic: str,
    snap: Snapshot,
    reveal: Reveal,
    progress: Callable[[int], None] = lambda n: None,
) -> Rows:
    """Apply both logs up to the snapshot's positions into the empty database `into`."""
    conn = await connect_retrying(into)
    try:
        tables = await conn.fetchval(
            "SELECT count(*) FROM pg_tables "
            "WHERE schemaname NOT IN ('pg_catalog', 'information_schema')"
        )
        if tables:
            raise ValueError(f"{_where(into)} is not empty: replay needs an empty database")
    finally:
        await conn.close()
    await migrate_database(into, migrations(), functions())
    conn = await connect_retrying(into)
    try:
        await _apply(conn, IssuerProjection(), kafka, issuer_topic, snap.issuer, progress)
        await _apply(
            conn, DecisionProjection(reveal), kafka, redeemer_topic, snap.redeemer, progress
        )
        return await dump(conn)
    finally:
        await conn.close()


def _where(dsn: str) -> str:
    from shared.db import mask_dsn

    return mask_dsn(dsn)


def diff(live: Rows, replayed: Rows) -> list[str]:
    """Every difference, one line each; none when the rebuilt state is the live one."""
    lines: list[str] = []
    for table in TABLES:
        width = KEYS.get(table, 1)
        mine = {row[:width]: row for row in live[table]}
        theirs = {row[:width]: row for row in replayed[table]}
        for key in sorted(mine.keys() | theirs.keys(), key=repr):
            a, b = mine.get(key), theirs.get(key)
            name = "/".join(str(k) for k in key)
            if b is None:
                lines.append(f"{table} {name}: live only: {_show(a)}")
            elif a is None:
                lines.append(f"{table} {name}: replay only: {_show(b)}")
            elif a != b:
                changed = [
                    f"{column}: live {x!r}, replay {y!r}"
                    for column, x, y in zip(_columns(table), a, b, strict=True)
                    if x != y
                ]
                lines.append(f"{table} {name}: " + "; ".join(changed))
    return lines


def _columns(table: str) -> Sequence[str]:
    select = TABLES[table].split(" FROM ")[0].removeprefix("SELECT ")
    return [c.strip().split("::")[0] for c in select.split(",")]


def _show(row: tuple[Any, ...] | None) -> str:
    return "" if row is None else ", ".join(repr(v) for v in row)
