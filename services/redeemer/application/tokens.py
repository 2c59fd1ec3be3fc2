"""A join token for a scan that passed every rule: one call of `qunma_accept_scan`
(../sql/accept_scan.sql), alone or in a batch of the same code's scans (combiner.py),
which makes the person if new, writes their token, the scan fact
and the `ScanAccepted` event, then counts the scan and reserves the seat, or refuses with
the SQLSTATE of why (domain/refusals.py) and leaves nothing.
"""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any

import asyncpg

from services.redeemer.application.combiner import Combiner
from services.redeemer.application.outcomes import Subject
from services.redeemer.application.people import PersonRef
from services.redeemer.application.results import Group, Scanned
from services.redeemer.domain import refusals
from services.redeemer.domain.inputs import ScanInput
from shared.clock import Clock, utcnow
from shared.crypto.signing import b64url
from shared.db import after_commit, in_request_transaction
from shared.events.redeemer import ScanAccepted
from shared.store.eventstore import Pending, event_values
from shared.store.unit_of_work import Outbox

# Not decisions, but the same scan tried again reads afresh: a unique violation (the same
# person made at the same moment) and a deadlock the database broke (possible only between
# batches on two replicas holding rows of the same person).
_RETRY = frozenset({"23505", "40P01"})

ACCEPT = """
SELECT * FROM qunma_accept_scan(
    p_token_hash => $1, p_scan_id => $2, p_tenant => $3, p_group => $4, p_code => $5,
    p_live_code => $6, p_user => $7, p_device => $8, p_verification => $9,
    p_bind_device => $10, p_expires_at => $11, p_channel => $12, p_now => $13, p_held => $14,
    p_day => $15, p_daily_limit => $16, p_cap => $17,
    p_person => $18, p_key_id => $19, p_wrapped => $20, p_class => $21, p_key_day => $22,
    p_new_person => $23, p_new_key => $24, p_event => $25)
"""


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True, kw_only=True)
class Grant:
    """What the token is for, beyond the scan's subject."""

    group_id: uuid.UUID
    held: uuid.UUID | None  # the scan of the person's unredeemed token, which is replaced
    db_now: datetime  # a token's 15 s start from the database's clock as the scan read it
    person: PersonRef
    verification: str = "none"
    bind_device: bool = False
    day: date | None = None  # a code's scans are counted per local day
    daily_limit: int | None = None
    cap: int | None = None  # a live code's switch_at
    timezone: str | None = None  # for a daily cap's Retry-After
    not_before: datetime | None = None  # for a scheduled code's answer


class Tokens:
    def __init__(self, outbox: Outbox, *, token_ttl: int, clock: Clock = utcnow) -> None:
        self.outbox = outbox
        self.token_ttl = token_ttl
        self.clock = clock
        self.combiner = Combiner(outbox.pool, on_commit=outbox.on_commit)

    async def hand_out(self, subject: Subject, scan: ScanInput, grant: Grant) -> Scanned:
        """Raises the scan's Refusal, or `refusals.Retry` when the person's token or key
        moved under it (the same person, at the same moment)."""
        join_token = b64url(secrets.token_bytes(32))
        expires_at = grant.db_now + timedelta(seconds=self.token_ttl)
        now = self.clock()
        person = grant.person
        event = event_values(
            self.outbox.log,
            Pending(
                ScanAccepted(
                    scan_id=subject.scan_id,
                    code_id=subject.code_id,
                    group_id=grant.group_id,
                    person=person.person,
                    user=person.user(subject.user_id),
                    device=person.seal("device", scan.device_id),
                    display_name=person.seal("display_name", scan.display_name),
                    token_expires_at=expires_at,
                    replaces_scan_id=grant.held,
                    live_code_id=subject.live_code_id,
                    channel=subject.channel,
                    day=grant.day,
                    daily_capped=grant.daily_limit is not None,
                    ip=person.seal_ip(scan.ip),
                    location=person.seal_location(scan.location),
                ),
                f"scan:{subject.scan_id}",
                1,
                subject.tenant_id,
                str(grant.group_id),
            ),
            now,
        )
        scan_row = (
            token_hash(join_token),
            subject.scan_id,
            subject.tenant_id,
            grant.group_id,
            subject.code_id,
            subject.live_code_id,
            subject.user_id,
            scan.device_id,
            grant.verification,
            grant.bind_device,
            expires_at,
            subject.channel,
            now,
            grant.held,
            grant.day,
            grant.daily_limit,
            grant.cap,
            person.person,
            person.key.key_id,
            person.wrapped,
            person.klass,
            person.day,
            person.new_person,
            person.new_key,
            event,
        )
        # Scans of one code (or one live code's group) contend for that code's row; the
        # combiner decides those that arrive together in one transaction. A scan inside a
        # request transaction (an Idempotency-Key) is written on that transaction's
        # connection instead, so that its answer commits with it.
        if in_request_transaction():
            group = await self._alone(scan_row, grant, now)
        else:
            answer = await self.combiner.accept(subject.code_id or grant.group_id, scan_row)
            if answer["refused"] is not None:
                raise _refused(answer["refused"], grant, now) or ScanFailed(
                    f"accepting a scan failed: {answer['refused']} {answer['message']}"
                )
            group = answer
        return Scanned(
            outcome="token",
            tenant_id=subject.tenant_id,
            group=Group.of(group),
            join_token=join_token,
            expires_at=expires_at,
        )

    async def _alone(
        self, scan_row: tuple[Any, ...], grant: Grant, now: datetime
    ) -> asyncpg.Record:
        try:
            async with self.outbox.pool.acquire() as conn:
                group = await conn.fetchrow(ACCEPT, *scan_row)
        except asyncpg.PostgresError as exc:
            answer = _refused(getattr(exc, "sqlstate", "") or "", grant, now)
            if answer is None:
                raise  # not a decision: the database failed (unavailable() tells which)
            raise answer from None
        assert group is not None
        if self.outbox.on_commit is not None:
            after_commit(self.outbox.on_commit)
        return group


def _refused(sqlstate: str, grant: Grant, now: datetime) -> Exception | None:
    """What a scan the SQL refused raises: its refusal, or `refusals.Retry` when the
    person's token or key moved under it, or the same person's row was made at the same
    moment (a unique violation), or the database broke a deadlock by rolling it back."""
    if sqlstate in _RETRY:
        return refusals.Retry(sqlstate)
    return refusals.refusal(sqlstate, now=now, timezone=grant.timezone, not_before=grant.not_before)


class ScanFailed(Exception):
    """The database failed one scan of a batch for a reason that is not a decision."""
