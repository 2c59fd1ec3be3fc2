"""Join requests (`approval` and `real_name` codes): asked by a scan, decided by a person.

Asking counts the scan like any other (qunma_count_scan) but takes no seat; approving
takes a free one (application/seats.py), so approvals never push a group past its cap.
Deciding is a conditional update of the request (`WHERE status = 'pending'`), so a
request is decided once.
"""

from __future__ import annotations

import uuid

import asyncpg

from services.redeemer.application import seats
from services.redeemer.application.joins import admit
from services.redeemer.application.outcomes import GROUP, Subject, write_fact
from services.redeemer.application.people import People
from services.redeemer.application.results import Group, Joined, Scanned
from services.redeemer.domain import refusals
from services.redeemer.domain.admission import CodeContext
from services.redeemer.domain.inputs import ScanInput
from shared.clock import Clock, utcnow
from shared.events.redeemer import JoinRequestApproved, JoinRequestDeclined, JoinRequested
from shared.ids import uuid7
from shared.refusals import Reason, Refusal
from shared.store.unit_of_work import Outbox

COUNT = "SELECT qunma_count_scan(p_code => $1, p_now => $2, p_day => $3, p_daily_limit => $4)"
_PENDING = """
SELECT request_id FROM join_requests WHERE group_id = $1 AND user_id = $2 AND status = 'pending'
"""
_ASK = """
INSERT INTO join_requests (request_id, scan_id, tenant_id, group_id, code_id, user_id, mode,
                           real_name, created_at, person, display_name)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
"""
_DECIDE = """
UPDATE join_requests SET status = $3, decided_at = $4, decided_by = $5, decline_reason = $6
WHERE request_id = $1 AND tenant_id = $2 AND status = 'pending'
RETURNING group_id, user_id, code_id, live_code_id, scan_id, mode
"""


class JoinRequests:
    def __init__(self, outbox: Outbox, people: People, clock: Clock = utcnow) -> None:
        self.outbox = outbox
        self.people = people
        self.clock = clock

    async def ask(self, subject: Subject, code: CodeContext, scan: ScanInput) -> Scanned:
        """A scan of a code a person decides on: the request waits (202), once per person."""
        async with self.outbox.pool.acquire() as conn:
            pending = await conn.fetchval(_PENDING, code.group_id, subject.user_id)
            group = Group.of(await conn.fetchrow(GROUP, code.group_id))
        if pending is not None:
            return self._waiting(subject, group, pending)
        request_id = uuid7()
        now = self.clock()
        day = code.day(now)
        try:
            async with self.outbox.unit() as uow:
                # The code's row, then the group's: the order a token's scan locks them in.
                await uow.conn.execute(COUNT, code.code_id, now, day, code.daily_scan_limit)
                if not await seats.take_free(uow.conn, code.group_id):
                    raise Refusal(Reason.GROUP_FULL, "the group has no free seat")
                person = await self.people.get(
                    uow.conn, subject.tenant_id, subject.user_id, code.group_id
                )
                await uow.conn.execute(
                    _ASK,
                    request_id,
                    subject.scan_id,
                    subject.tenant_id,
                    code.group_id,
                    code.code_id,
                    subject.user_id,
                    code.verification_mode,
                    scan.real_name,
                    uow.now,
                    person.person,
                    scan.display_name,
                )
                uow.record(
                    JoinRequested(
                        request_id=request_id,
                        scan_id=subject.scan_id,
                        code_id=code.code_id,
                        group_id=code.group_id,
                        person=person.person,
                        user=person.user(subject.user_id),
                        mode=code.verification_mode,
                        real_name=person.seal("real_name", scan.real_name),
                        display_name=person.seal("display_name", scan.display_name),
                        channel=subject.channel,
                        day=day,
                        daily_capped=code.daily_scan_limit is not None,
                        ip=person.seal_ip(scan.ip),
                        location=person.seal_location(scan.location),
                    ),
                    stream_id=f"request:{request_id}",
                    version=1,
                    tenant_id=subject.tenant_id,
                    key=str(code.group_id),
                )
                await write_fact(uow.conn, subject, "requested", None, uow.now)
        except asyncpg.UniqueViolationError:
            return await self.ask(subject, code, scan)  # asked twice at once
        except asyncpg.PostgresError as exc:
            answer = refusals.refusal(
                getattr(exc, "sqlstate", "") or "",
                now=now,
                timezone=code.timezone,
                not_before=code.not_before,
            )
            if not isinstance(answer, Refusal):
                raise
            raise answer from None
        return self._waiting(subject, group, request_id)

    @staticmethod
    def _waiting(subject: Subject, group: Group, request_id: uuid.UUID) -> Scanned:
        return Scanned(
            outcome="pending", tenant_id=subject.tenant_id, group=group, join_request_id=request_id
        )

    async def approve(
        self, tenant_id: uuid.UUID, request_id: uuid.UUID, by: uuid.UUID | None
    ) -> Joined:
        async with self.outbox.unit() as uow:
            row = await uow.conn.fetchrow(
                _DECIDE, request_id, tenant_id, "approved", uow.now, by, None
            )
            if row is None:
                raise await self._why_not(tenant_id, request_id)
            group_id = row["group_id"]
            already = await uow.conn.fetchval(
                "SELECT 1 FROM memberships WHERE group_id = $1 AND user_id = $2",
                group_id,
                row["user_id"],
            )
            if not already and not await seats.take_free(uow.conn, group_id):
                raise Refusal(Reason.GROUP_FULL, "the group has no free seat for this request")
            await uow.conn.execute(
                "UPDATE scan_facts SET joined_at = $2 WHERE scan_id = $1", row["scan_id"], uow.now
            )
            stream = f"request:{request_id}"
            person = await self.people.get(uow.conn, tenant_id, row["user_id"], group_id)
            uow.record(
                JoinRequestApproved(
                    request_id=request_id,
                    group_id=group_id,
                    person=person.person,
                    user=person.user(row["user_id"]),
                    decided_by=by,
                ),
                stream_id=stream,
                version=2,
                tenant_id=tenant_id,
                key=str(group_id),
            )
            return await admit(
                uow,
                tenant_id=tenant_id,
                group_id=group_id,
                user_id=row["user_id"],
                person=person,
                code_id=row["code_id"],
                live_code_id=row["live_code_id"],
                scan_id=None,
                request_id=request_id,
                verification=row["mode"],
                stream=stream,
                version=3,
                seat_reserved=False,
            )

    async def decline(
        self,
        tenant_id: uuid.UUID,
        request_id: uuid.UUID,
        by: uuid.UUID | None,
        reason: str | None,
    ) -> None:
        async with self.outbox.unit() as uow:
            row = await uow.conn.fetchrow(
                _DECIDE, request_id, tenant_id, "declined", uow.now, by, reason
            )
            if row is None:
                raise await self._why_not(tenant_id, request_id)
            person = await self.people.get(uow.conn, tenant_id, row["user_id"], row["group_id"])
            uow.record(
                JoinRequestDeclined(
                    request_id=request_id,
                    group_id=row["group_id"],
                    person=person.person,
                    user=person.user(row["user_id"]),
                    decided_by=by,
                    reason=reason,
                ),
                stream_id=f"request:{request_id}",
                version=2,
                tenant_id=tenant_id,
                key=str(row["group_id"]),
            )

    async def _why_not(self, tenant_id: uuid.UUID, request_id: uuid.UUID) -> Refusal:
        async with self.outbox.pool.acquire() as conn:
            status = await conn.fetchval(
                "SELECT status FROM join_requests WHERE request_id = $1 AND tenant_id = $2",
                request_id,
                tenant_id,
            )
        if status is None:
            return Refusal(Reason.NOT_FOUND, f"no join request {request_id}")
        return Refusal(Reason.JOIN_REQUEST_DECIDED, f"this join request was already {status}")
