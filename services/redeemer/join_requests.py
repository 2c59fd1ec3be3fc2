"""Deciding join requests (`approval` and `real_name` codes).

Approval takes a free seat with the same conditional statement as a scan's reservation, so
approvals never push a group past its cap; deciding is a conditional update of the request
(`WHERE status = 'pending'`), so a request is decided once.
"""

from __future__ import annotations

import uuid

from services.redeemer.joins import Joined, admit
from services.redeemer.people import People
from shared.events.redeemer import JoinRequestApproved, JoinRequestDeclined
from shared.http.problems import Problem
from shared.store.unit_of_work import Outbox

_DECIDE = """
UPDATE join_requests SET status = $3, decided_at = $4, decided_by = $5, decline_reason = $6
WHERE request_id = $1 AND tenant_id = $2 AND status = 'pending'
RETURNING group_id, user_id, code_id, live_code_id, scan_id, mode
"""
_TAKE_SEAT = """
UPDATE groups SET members = members WHERE group_id = $1 AND members + reserved < max_members
RETURNING group_id
"""


class JoinRequests:
    def __init__(self, outbox: Outbox, people: People) -> None:
        self.outbox = outbox
        self.people = people

    async def approve(
        self, tenant_id: uuid.UUID, request_id: uuid.UUID, by: uuid.UUID | None
    ) -> Joined:
        async with self.outbox.unit() as uow:
            row = await uow.conn.fetchrow(
                _DECIDE, request_id, tenant_id, "approved", uow.now, by, None
            )
            if row is None:
                await self._explain(tenant_id, request_id)
            assert row is not None
            group_id = row["group_id"]
            already = await uow.conn.fetchval(
                "SELECT 1 FROM memberships WHERE group_id = $1 AND user_id = $2",
                group_id,
                row["user_id"],
            )
            # Lock the group row and check a seat is free, in one statement.
            if not already and await uow.conn.fetchval(_TAKE_SEAT, group_id) is None:
                raise Problem("group_full", "the group has no free seat for this request")
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
                await self._explain(tenant_id, request_id)
            assert row is not None
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

    async def _explain(self, tenant_id: uuid.UUID, request_id: uuid.UUID) -> None:
        async with self.outbox.pool.acquire() as conn:
            status = await conn.fetchval(
                "SELECT status FROM join_requests WHERE request_id = $1 AND tenant_id = $2",
                request_id,
                tenant_id,
            )
        if status is None:
            raise Problem("not_found", f"no join request {request_id}")
        raise Problem("join_request_decided", f"this join request was already {status}")
