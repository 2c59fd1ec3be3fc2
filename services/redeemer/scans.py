"""The scan decision: check a code, count the scan, reserve a seat, hand out a join token.

Checks run in the documented order (docs/api.md) and the first that fails is the answer.
Every limit is one conditional statement (`… WHERE used < max RETURNING`), never a read
followed by a write, so caps hold exactly however many replicas race. The scan counter,
the daily counter, the seat and the token commit together or not at all; a refusal rolls
them back and is recorded as its own `ScanRejected` event.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import secrets
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from services.redeemer import checks
from services.redeemer.api.schemas import GroupSummary, Membership, ScanOut
from services.redeemer.code_signatures import CodeSignatures
from services.redeemer.lockout import Lockout
from services.redeemer.people import People, PersonRef, location_text
from services.redeemer.refusal import Refused
from shared import codetoken
from shared.clock import Clock, utcnow
from shared.crypto.signing import b64url
from shared.db import after_commit
from shared.events.personal import Sealed
from shared.events.redeemer import (
    JoinRequested,
    ScanAccepted,
    ScanFoundMember,
    ScanRejected,
)
from shared.http.clientip import IPAddress
from shared.http.problems import Problem
from shared.ids import uuid7
from shared.invite_codes import invite_code_matches
from shared.store.eventstore import Pending, event_values
from shared.store.unit_of_work import Outbox, UnitOfWork

PER_CODE_IN_FLIGHT = 2  # scans of one code in the database at once, per replica


@dataclass(frozen=True)
class Location:
    lat: float
    lon: float
    accuracy_m: float | None = None


@dataclass(frozen=True)
class ScanInput:
    payload: str
    user_id: str
    device_id: str | None = None
    ip: IPAddress | None = None
    location: Location | None = None
    invite_code: str | None = None
    phone_last4: str | None = None
    real_name: str | None = None
    display_name: str | None = None
    attributes: dict[str, list[str]] = field(default_factory=dict)
    # False on the anonymous landing page: nobody vouches for what the person says
    vouched: bool = True
    # True when `ip` is the person's own (the page's visitor, or forwarded by a trusted
    # proxy), not the calling backend's: wrong answers then count against the address too
    address_is_persons: bool = False

    def sealed_ip(self, person: PersonRef) -> Sealed | None:
        return person.seal("ip", None if self.ip is None else str(self.ip))

    def sealed_location(self, person: PersonRef) -> Sealed | None:
        where = self.location
        if where is None:
            return None
        return person.seal("location", location_text(where.lat, where.lon, where.accuracy_m))


@dataclass(frozen=True)
class Answer:
    status: int
    body: ScanOut
    tenant_id: uuid.UUID


@dataclass(frozen=True)
class Subject:
    """What a scan is about, for the events and facts it leaves."""

    tenant_id: uuid.UUID
    scan_id: uuid.UUID
    user_id: str
    code_id: uuid.UUID | None = None
    live_code_id: uuid.UUID | None = None
    group_id: uuid.UUID | None = None
    channel: str | None = None
    scan: ScanInput | None = None  # what the person sent, for the personal values recorded


_CONTEXT = """
SELECT c.*, g.name AS group_name, g.members, g.reserved, g.max_members, g.profile,
       g.timezone, g.verified_joins, m.joined_at AS member_since, t.scan_id AS held_scan_id,
       p.person, k.key_id AS person_key_id, k.wrapped AS person_key_wrapped, now() AS db_now
FROM codes c JOIN groups g ON g.group_id = c.group_id
LEFT JOIN memberships m ON m.group_id = c.group_id AND m.user_id = $2
LEFT JOIN join_tokens t ON t.group_id = c.group_id AND t.user_id = $2
LEFT JOIN people p ON p.tenant_id = c.tenant_id AND p.user_id = $2
-- A lateral lookup (LIMIT keeps the planner from flattening it): the key is found by its
-- whole unique index, never by scanning the day's keys of every person.
LEFT JOIN LATERAL (
    SELECT k.key_id, k.wrapped FROM person_keys k
    WHERE k.tenant_id = c.tenant_id AND k.person = p.person AND k.class = g.profile
      AND k.day = $3
    LIMIT 1
) k ON true
WHERE c.code_id = $1
"""
_WHY_NOT = """
SELECT status, expires_at IS NOT NULL AND expires_at <= $2 AS expired,
       not_before IS NOT NULL AND not_before > $2 AS early
FROM codes WHERE code_id = $1
"""
# A scan's writes, in one call (migrations/0003_scan_functions.sql): this person's token,
# fact and event first, then the code's counter and the group's seat, locked only for the
# call and its commit. Refusals come back as SQLSTATE QM001 to QM005.
_ACCEPT = "SELECT * FROM qunma_accept_scan(" + ", ".join(f"${i}" for i in range(1, 37)) + ")"
_COUNT = "SELECT qunma_count_scan($1, $2, $3, $4)"
GROUP = "SELECT group_id, name, members, max_members FROM groups WHERE group_id = $1"
_FACT = """
INSERT INTO scan_facts (scan_id, tenant_id, code_id, live_code_id, group_id, channel, outcome,
                        reason, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""


class Moved(Exception):
    """The person's token changed between reading the scan's context and writing."""


class PersonMoved(Exception):
    """The person or key a scan sealed with is no longer theirs (made first by a
    concurrent scan of the same person, or erased): read them again."""


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def group_summary(row: asyncpg.Record | None) -> GroupSummary:
    assert row is not None  # a code's group is projected before the code
    return GroupSummary(row["group_id"], row["name"], row["members"], row["max_members"])


class Scanner:
    def __init__(
        self,
        outbox: Outbox,
        *,
        people: People,
        signatures: CodeSignatures,
        lockout: Lockout,
        invite_secret: bytes,
        token_ttl: int,
        clock: Clock = utcnow,
        propagation_wait: float = 3.0,
    ) -> None:
        self.outbox = outbox
        self.people = people
        self.pool = outbox.pool
        self.signatures = signatures
        self.lockout = lockout
        self.invite_secret = invite_secret
        self.token_ttl = token_ttl
        self.clock = clock
        self.propagation_wait = propagation_wait
        # Held only while a scan of that code is in flight (weak values).
        self._gates: weakref.WeakValueDictionary[uuid.UUID, asyncio.Semaphore] = (
            weakref.WeakValueDictionary()
        )

    # -- the entry point ---------------------------------------------------------------

    async def scan(self, tenant_id: uuid.UUID | None, scan: ScanInput) -> Answer:
        """`tenant_id` is the caller's (API); None for the landing page, where the code
        itself says whose it is."""
        from services.redeemer.live_scans import scan_live_code

        scan_id = uuid7()
        token, tenant = await self._verified_token(tenant_id, scan, scan_id)
        if token.kind == "live":
            return await scan_live_code(
                self,
                Subject(tenant, scan_id, scan.user_id, live_code_id=token.code_id, scan=scan),
                scan,
            )
        ctx = await self.poll(
            _CONTEXT, token.code_id, scan.user_id, self.people.today(), give_up=lambda: False
        )
        if ctx is None:
            raise Problem(
                "code_not_propagated",
                "this code was issued moments ago and is not known here yet; retry in a second",
                headers={"Retry-After": "1"},
            )
        subject = Subject(
            tenant,
            scan_id,
            scan.user_id,
            code_id=ctx["code_id"],
            group_id=ctx["group_id"],
            channel=ctx["channel"],
            scan=scan,
        )
        try:
            return await self._scan_code(subject, ctx, scan)
        except Refused as refused:
            raise await self.refuse(subject, refused, fallback_url=ctx["fallback_url"]) from None

    async def verify(
        self, payload: str, tenant_id: uuid.UUID | None = None
    ) -> tuple[codetoken.CodeToken, uuid.UUID]:
        """The token in `payload` and its tenant, if its signature verifies; else invalid_code."""
        return await self.signatures.verify(payload, tenant_id)

    async def _verified_token(
        self, tenant_id: uuid.UUID | None, scan: ScanInput, scan_id: uuid.UUID
    ) -> tuple[codetoken.CodeToken, uuid.UUID]:
        try:
            return await self.verify(scan.payload, tenant_id)
        except Problem:
            if tenant_id is not None:  # a rejection is recorded for the tenant that asked
                await self._record_rejection(
                    Subject(tenant_id, scan_id, scan.user_id, scan=scan), "invalid_code", None
                )
            raise

    async def poll(
        self, query: str, *args: object, give_up: Callable[[], bool]
    ) -> asyncpg.Record | None:
        """A projected row. The signature proves the issuer made the code: one issued a
        moment ago is on its way through the log, so it is waited for, not refused."""
        deadline = asyncio.get_running_loop().time() + self.propagation_wait
        delay = 0.01
        while True:
            async with self.pool.acquire() as conn:
                row: asyncpg.Record | None = await conn.fetchrow(query, *args)
            if row is not None or give_up() or asyncio.get_running_loop().time() >= deadline:
                return row
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    # -- a code ------------------------------------------------------------------------

    async def _scan_code(self, subject: Subject, ctx: asyncpg.Record, scan: ScanInput) -> Answer:
        now = self.clock()
        if ctx["not_before"] is not None and ctx["not_before"] > now:
            wait = int((ctx["not_before"] - now).total_seconds()) + 1
            raise Refused(
                "code_not_active",
                "this code is not valid yet",
                {"Retry-After": str(wait)},
                active_from=ctx["not_before"].isoformat(),
            )
        if ctx["expires_at"] is not None and ctx["expires_at"] <= now:
            raise Refused("code_expired", "this code has expired; ask for a new one")
        if ctx["status"] == "revoked":
            raise Refused("code_revoked", "this code was revoked by the group's owner")
        if ctx["status"] == "superseded":
            raise Refused("code_superseded", "a newer code of this group replaced this one")
        if ctx["member_since"] is not None:
            return await self.found_member(subject, ctx["member_since"])
        mode = ctx["verification_mode"]
        self._check_admission(ctx, mode, scan)
        if mode in ("invite_code", "phone_last4"):
            await self._check_answer(subject, ctx, mode, scan)
        if mode in ("approval", "real_name"):
            return await self._request(subject, ctx, mode, scan)
        return await self._accept(subject, ctx, mode, scan)

    def _check_admission(self, ctx: asyncpg.Record, mode: str, scan: ScanInput) -> None:
        refusal = checks.qr_join_refusal(
            ctx["profile"], mode, ctx["members"], ctx["verified_joins"]
        )
        if refusal is not None:
            raise Refused("qr_join_disabled", refusal)
        allowlist = [ipaddress.ip_network(n) for n in ctx["ip_allowlist"]]
        if not checks.ip_allowed(scan.ip, allowlist):
            raise Refused("ip_not_allowed", "this code is not open to your network")
        if ctx["geo_lat"] is not None:
            if scan.location is None:
                raise Refused("location_required", "this code needs your location")
            if not checks.inside_fence(
                scan.location.lat,
                scan.location.lon,
                scan.location.accuracy_m,
                ctx["geo_lat"],
                ctx["geo_lon"],
                ctx["geo_radius_m"],
            ):
                raise Refused("outside_geofence", "you are outside the area this code is for")
        if ctx["bind_device"] and not scan.device_id:
            raise Refused(
                "device_not_allowed", "this code binds the join to a device: send device_id"
            )
        needed = {
            "invite_code": scan.invite_code,
            "phone_last4": scan.phone_last4,
            "real_name": scan.real_name,
        }
        if mode in needed and not needed[mode]:
            raise Refused("verification_required", f"this code asks for {mode}", field=mode)

    async def _check_answer(
        self, subject: Subject, ctx: asyncpg.Record, mode: str, scan: ScanInput
    ) -> None:
        now = self.clock()
        if mode == "phone_last4" and ctx["phone_last4"] is None and not scan.vouched:
            # Without a list of digits only the platform can vouch for them (an API call);
            # on the anonymous page any four digits would do.
            raise Refused(
                "verification_unavailable",
                "this code's phone digits are checked by the platform: open it in its app",
            )
        counted_against = self.lockout.subjects(
            subject.tenant_id, subject.user_id, scan.ip if scan.address_is_persons else None
        )
        async with self.pool.acquire() as conn:
            await self.lockout.refuse_if_locked(conn, ctx["code_id"], counted_against, now)
            if mode == "invite_code":
                right = invite_code_matches(
                    self.invite_secret,
                    ctx["code_id"],
                    scan.invite_code or "",
                    ctx["invite_code_hash"],
                )
            else:
                right = checks.phone_matches(scan.phone_last4 or "", ctx["phone_last4"])
            if right:
                return
            raise await self.lockout.count_wrong(
                conn, ctx["code_id"], counted_against, now, mode.replace("_", " ")
            )

    async def _refusal(self, exc: asyncpg.PostgresError, code: asyncpg.Record | None) -> Exception:
        """What a refusal raised by the scan functions means for this scan."""
        state = getattr(exc, "sqlstate", None)
        if state == "QM001" and code is not None:
            return await self._not_counted(code["code_id"])
        if state == "QM002" and code is not None:
            wait = checks.seconds_to_local_midnight(self.clock(), code["timezone"])
            return Refused(
                "daily_limit_reached",
                "this code has been scanned as many times today as it allows",
                {"Retry-After": str(wait)},
            )
        if state == "QM003":
            return Refused("group_full", "the group has no free seat")
        if state == "QM004":
            return Moved()
        if state == "QM005":
            return PersonMoved()
        return exc

    async def _not_counted(self, code_id: uuid.UUID) -> Refused:
        async with self.pool.acquire() as conn:
            why = await conn.fetchrow(_WHY_NOT, code_id, self.clock())
        assert why is not None  # codes are never deleted
        if why["early"]:
            return Refused("code_not_active", "this code is not valid yet")
        if why["expired"]:
            return Refused("code_expired", "this code has expired; ask for a new one")
        if why["status"] != "active":
            return Refused(f"code_{why['status']}", f"this code was {why['status']}")
        return Refused(
            "scan_limit_reached", "this code has been scanned as many times as it allows"
        )

    async def _accept(
        self, subject: Subject, ctx: asyncpg.Record, mode: str, scan: ScanInput
    ) -> Answer:
        for attempt in range(3):
            try:
                return await self.hand_out_token(
                    subject,
                    ctx["group_id"],
                    scan,
                    held=ctx["held_scan_id"],
                    db_now=ctx["db_now"],
                    person=self.people.from_context(ctx, ctx["profile"]),
                    verification=mode,
                    bind_device=ctx["bind_device"],
                    code=ctx,
                )
            except (asyncpg.UniqueViolationError, Moved, PersonMoved):
                # The same person scanned twice at once: read again, then reissue.
                if attempt == 2:
                    raise
                ctx = (
                    await self.poll(
                        _CONTEXT,
                        ctx["code_id"],
                        subject.user_id,
                        self.people.today(),
                        give_up=lambda: True,
                    )
                    or ctx
                )
        raise AssertionError("unreachable")

    async def hand_out_token(
        self,
        subject: Subject,
        group_id: uuid.UUID,
        scan: ScanInput,
        *,
        held: uuid.UUID | None,
        db_now: datetime,
        person: PersonRef,
        verification: str = "none",
        bind_device: bool = False,
        code: asyncpg.Record | None = None,
        cap: int | None = None,
    ) -> Answer:
        """Reserve a seat (or take over the person's own unredeemed one), count the scan and
        record it, in one call. The token's 15 s start from the database's clock as the
        scan's context read it."""
        join_token = b64url(secrets.token_bytes(32))
        expires_at = db_now + timedelta(seconds=self.token_ttl)
        now = self.clock()
        day = checks.local_day(now, code["timezone"]) if code is not None else None
        event = event_values(
            self.outbox.log,
            Pending(
                ScanAccepted(
                    scan_id=subject.scan_id,
                    code_id=subject.code_id,
                    group_id=group_id,
                    person=person.person,
                    user=person.user(subject.user_id),
                    device=person.seal("device", scan.device_id),
                    display_name=person.seal("display_name", scan.display_name),
                    token_expires_at=expires_at,
                    replaces_scan_id=held,
                    live_code_id=subject.live_code_id,
                    channel=subject.channel,
                    day=day,
                    daily_capped=code is not None and code["daily_scan_limit"] is not None,
                    ip=scan.sealed_ip(person),
                    location=scan.sealed_location(person),
                ),
                f"scan:{subject.scan_id}",
                1,
                subject.tenant_id,
                str(group_id),
            ),
            now,
        )
        # Scans of one code (or one live code's group) queue on that code's row in the
        # database anyway; letting dozens wait there at once halves throughput (the lock
        # holder's commit competes with every waiter). A per-replica gate keeps it to a few.
        gate_key = subject.code_id or group_id
        gate = self._gates.get(gate_key)
        if gate is None:
            gate = self._gates[gate_key] = asyncio.Semaphore(PER_CODE_IN_FLIGHT)
        try:
            async with gate, self.pool.acquire() as conn:
                group = await conn.fetchrow(
                    _ACCEPT,
                    token_hash(join_token),
                    subject.scan_id,
                    subject.tenant_id,
                    group_id,
                    subject.code_id,
                    subject.live_code_id,
                    subject.user_id,
                    scan.device_id,
                    verification,
                    bind_device,
                    expires_at,
                    subject.channel,
                    now,
                    held,
                    now,
                    day,
                    code["daily_scan_limit"] if code is not None else None,
                    cap,
                    person.person,
                    person.key.key_id,
                    person.wrapped,
                    person.klass,
                    person.day,
                    person.new_person,
                    person.new_key,
                    *event,
                )
        except asyncpg.PostgresError as exc:
            raise await self._refusal(exc, code) from None
        if self.outbox.on_commit is not None:
            after_commit(self.outbox.on_commit)
        return Answer(
            200,
            ScanOut(
                status="token",
                group=group_summary(group),
                join_token=join_token,
                expires_at=expires_at,
            ),
            subject.tenant_id,
        )

    async def _request(
        self, subject: Subject, ctx: asyncpg.Record, mode: str, scan: ScanInput
    ) -> Answer:
        """`approval` and `real_name`: a join request waits for a person to decide."""
        async with self.pool.acquire() as conn:
            pending = await conn.fetchval(
                "SELECT request_id FROM join_requests WHERE group_id = $1 AND user_id = $2 "
                "AND status = 'pending'",
                ctx["group_id"],
                subject.user_id,
            )
            group = await conn.fetchrow(GROUP, ctx["group_id"])
        if pending is not None:
            return Answer(
                202,
                ScanOut(status="pending", group=group_summary(group), join_request_id=pending),
                subject.tenant_id,
            )
        request_id = uuid7()
        now = self.clock()
        day = checks.local_day(now, ctx["timezone"])
        try:
            async with self.outbox.unit() as uow:
                full = await uow.conn.fetchval(
                    "SELECT members + reserved >= max_members FROM groups WHERE group_id = $1",
                    ctx["group_id"],
                )
                if full:
                    raise Refused("group_full", "the group has no free seat")
                await uow.conn.execute(_COUNT, ctx["code_id"], now, day, ctx["daily_scan_limit"])
                person = await self.people.get(
                    uow.conn, subject.tenant_id, subject.user_id, ctx["group_id"]
                )
                await uow.conn.execute(
                    "INSERT INTO join_requests (request_id, scan_id, tenant_id, group_id, "
                    "code_id, user_id, mode, real_name, created_at, person, display_name) "
                    "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                    request_id,
                    subject.scan_id,
                    subject.tenant_id,
                    ctx["group_id"],
                    ctx["code_id"],
                    subject.user_id,
                    mode,
                    scan.real_name,
                    uow.now,
                    person.person,
                    scan.display_name,
                )
                uow.record(
                    JoinRequested(
                        request_id=request_id,
                        scan_id=subject.scan_id,
                        code_id=ctx["code_id"],
                        group_id=ctx["group_id"],
                        person=person.person,
                        user=person.user(subject.user_id),
                        mode=mode,
                        real_name=person.seal("real_name", scan.real_name),
                        display_name=person.seal("display_name", scan.display_name),
                        channel=subject.channel,
                        day=day,
                        daily_capped=ctx["daily_scan_limit"] is not None,
                        ip=scan.sealed_ip(person),
                        location=scan.sealed_location(person),
                    ),
                    stream_id=f"request:{request_id}",
                    version=1,
                    tenant_id=subject.tenant_id,
                    key=str(ctx["group_id"]),
                )
                await uow.conn.execute(
                    _FACT,
                    subject.scan_id,
                    subject.tenant_id,
                    ctx["code_id"],
                    None,
                    ctx["group_id"],
                    subject.channel,
                    "requested",
                    None,
                    uow.now,
                )
        except asyncpg.UniqueViolationError:
            return await self._request(subject, ctx, mode, scan)  # asked twice at once
        except asyncpg.PostgresError as exc:
            raise await self._refusal(exc, ctx) from None
        return Answer(
            202,
            ScanOut(status="pending", group=group_summary(group), join_request_id=request_id),
            subject.tenant_id,
        )

    # -- outcomes shared with live codes -------------------------------------------------

    async def found_member(self, subject: Subject, joined_at: datetime) -> Answer:
        assert subject.group_id is not None
        async with self.outbox.unit() as uow:
            group = await uow.conn.fetchrow(GROUP, subject.group_id)
            person = await self.people.get(
                uow.conn, subject.tenant_id, subject.user_id, subject.group_id
            )
            self._record(
                uow,
                subject,
                ScanFoundMember(
                    scan_id=subject.scan_id,
                    code_id=subject.code_id,
                    group_id=subject.group_id,
                    person=person.person,
                    user=person.user(subject.user_id),
                    live_code_id=subject.live_code_id,
                    channel=subject.channel,
                ),
            )
            await uow.conn.execute(
                _FACT,
                subject.scan_id,
                subject.tenant_id,
                subject.code_id,
                subject.live_code_id,
                subject.group_id,
                subject.channel,
                "member",
                None,
                uow.now,
            )
        return Answer(
            200,
            ScanOut(
                status="member",
                group=group_summary(group),
                membership=Membership(subject.group_id, subject.user_id, joined_at),
            ),
            subject.tenant_id,
        )

    async def refuse(
        self,
        subject: Subject,
        refused: Refused,
        *,
        fallback_url: str | None = None,
        groups_seen: int | None = None,
    ) -> Problem:
        await self._record_rejection(subject, refused.reason, groups_seen)
        return Problem(
            refused.reason,
            refused.detail,
            headers=refused.headers,
            fallback_url=fallback_url,
            **refused.extra,
        )

    async def _record_rejection(
        self, subject: Subject, reason: str, groups_seen: int | None
    ) -> None:
        async with self.outbox.unit() as uow:
            person = await self.people.get(
                uow.conn, subject.tenant_id, subject.user_id, subject.group_id
            )
            self._record(
                uow,
                subject,
                ScanRejected(
                    scan_id=subject.scan_id,
                    code_id=subject.code_id,
                    group_id=subject.group_id,
                    person=person.person,
                    user=person.user(subject.user_id),
                    reason=reason,
                    live_code_id=subject.live_code_id,
                    channel=subject.channel,
                    groups_seen=groups_seen,
                    ip=subject.scan.sealed_ip(person) if subject.scan else None,
                    location=subject.scan.sealed_location(person) if subject.scan else None,
                ),
            )
            await uow.conn.execute(
                _FACT,
                subject.scan_id,
                subject.tenant_id,
                subject.code_id,
                subject.live_code_id,
                subject.group_id,
                subject.channel,
                "rejected",
                reason,
                uow.now,
            )

    @staticmethod
    def _record(uow: UnitOfWork, subject: Subject, event: Any) -> None:
        key = subject.group_id or subject.live_code_id or subject.tenant_id
        uow.record(
            event,
            stream_id=f"scan:{subject.scan_id}",
            version=1,
            tenant_id=subject.tenant_id,
            key=str(key),
        )
