"""What every scan leaves, whatever the answer: a scan fact (for analytics) and an event.

An accepted scan's are written by its SQL call (../sql/accept_scan.sql); a join request's
by application/requests.py; here are the others: a person found to be a member already,
and a refusal, recorded after the refused transaction rolled back.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from services.redeemer.application.people import People
from services.redeemer.application.results import Group, Membership, Scanned
from services.redeemer.domain.inputs import ScanInput
from shared.dbtypes import Conn
from shared.events.redeemer import ScanFoundMember, ScanRejected
from shared.store.unit_of_work import Outbox, UnitOfWork

GROUP = "SELECT group_id, name, members, max_members FROM groups WHERE group_id = $1"
_FACT = """
INSERT INTO scan_facts (scan_id, tenant_id, code_id, live_code_id, group_id, channel, outcome,
                        reason, at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
"""


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

    @property
    def key(self) -> str:
        """The event's partition key: the group's, so a group's events stay in order."""
        return str(self.group_id or self.live_code_id or self.tenant_id)


async def write_fact(
    conn: Conn, subject: Subject, outcome: str, reason: str | None, at: datetime
) -> None:
    await conn.execute(
        _FACT,
        subject.scan_id,
        subject.tenant_id,
        subject.code_id,
        subject.live_code_id,
        subject.group_id,
        subject.channel,
        outcome,
        reason,
        at,
    )


class Outcomes:
    def __init__(self, outbox: Outbox, people: People) -> None:
        self.outbox = outbox
        self.people = people

    async def member(self, subject: Subject, joined_at: datetime) -> Scanned:
        """The person scanning is a member already: say so, and count nothing."""
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
            await write_fact(uow.conn, subject, "member", None, uow.now)
        return Scanned(
            outcome="member",
            tenant_id=subject.tenant_id,
            group=Group.of(group),
            membership=Membership(subject.group_id, subject.user_id, joined_at),
        )

    async def rejected(self, subject: Subject, reason: str, groups_seen: int | None = None) -> None:
        async with self.outbox.unit() as uow:
            person = await self.people.get(
                uow.conn, subject.tenant_id, subject.user_id, subject.group_id
            )
            scan = subject.scan
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
                    ip=person.seal_ip(scan.ip) if scan else None,
                    location=person.seal_location(scan.location) if scan else None,
                ),
            )
            await write_fact(uow.conn, subject, "rejected", reason, uow.now)

    @staticmethod
    def _record(uow: UnitOfWork, subject: Subject, event: Any) -> None:
        uow.record(
            event,
            stream_id=f"scan:{subject.scan_id}",
            version=1,
            tenant_id=subject.tenant_id,
            key=subject.key,
        )
