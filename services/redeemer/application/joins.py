"""Redeeming a join token into a membership.

`DELETE … RETURNING` is the claim: of any number of concurrent redemptions of one token,
exactly one deletes the row and converts its reserved seat into a member; the others find
it gone and get a precise answer from `spent_tokens`.
"""

from __future__ import annotations

import uuid

from services.redeemer.application import seats
from services.redeemer.application.people import People, PersonRef
from services.redeemer.application.results import Joined, Membership
from services.redeemer.application.tokens import token_hash
from shared.dbtypes import Conn
from shared.events.redeemer import JoinTokenRedeemed, MemberJoined
from shared.refusals import Reason, Refusal
from shared.store.unit_of_work import Outbox, UnitOfWork

# The token says whose key its scan was sealed with: the join is sealed with it too.
_CLAIM = """
WITH claimed AS (
    DELETE FROM join_tokens
    WHERE token_hash = $1 AND user_id = $2 AND tenant_id = $3 AND expires_at > now()
      AND (NOT bind_device OR device_id = $4)
    RETURNING scan_id, group_id, code_id, live_code_id, verification, person, person_key_id
)
SELECT c.*, k.wrapped AS person_key_wrapped, k.class, k.day
FROM claimed c LEFT JOIN person_keys k ON k.key_id = c.person_key_id AND k.tenant_id = $3
"""
_MEMBER = """
INSERT INTO memberships (group_id, user_id, joined_at, code_id, scan_id, verification, person)
VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING joined_at
"""


async def admit(
    uow: UnitOfWork,
    *,
    tenant_id: uuid.UUID,
    group_id: uuid.UUID,
    user_id: str,
    person: PersonRef,
    code_id: uuid.UUID | None,
    live_code_id: uuid.UUID | None,
    scan_id: uuid.UUID | None,
    request_id: uuid.UUID | None,
    verification: str,
    stream: str,
    version: int,
    seat_reserved: bool,
) -> Joined:
    """Make `user_id` a member, converting a reserved seat (a token) or taking a free one
    (an approved request; the caller checked there is one). Records MemberJoined."""
    conn: Conn = uow.conn
    joined_at = await conn.fetchval(
        _MEMBER, group_id, user_id, uow.now, code_id, scan_id, verification, person.person
    )
    created = joined_at is not None
    await seats.joined(
        conn, group_id, mode=verification, created=created, seat_reserved=seat_reserved
    )
    if created:
        uow.record(
            MemberJoined(
                group_id=group_id,
                person=person.person,
                user=person.user(user_id),
                code_id=code_id,
                scan_id=scan_id,
                verification=verification,
                live_code_id=live_code_id,
                request_id=request_id,
            ),
            stream_id=stream,
            version=version,
            tenant_id=tenant_id,
            key=str(group_id),
        )
    else:
        joined_at = await conn.fetchval(
            "SELECT joined_at FROM memberships WHERE group_id = $1 AND user_id = $2",
            group_id,
            user_id,
        )
    return Joined(Membership(group_id, user_id, joined_at), created)


class Joiner:
    def __init__(self, outbox: Outbox, people: People) -> None:
        self.outbox = outbox
        self.people = people

    async def join(
        self, tenant_id: uuid.UUID, join_token: str, user_id: str, device_id: str | None
    ) -> Joined:
        digest = token_hash(join_token)
        async with self.outbox.unit() as uow:
            claimed = await uow.conn.fetchrow(_CLAIM, digest, user_id, tenant_id, device_id)
            if claimed is not None:
                group_id, scan_id = claimed["group_id"], claimed["scan_id"]
                await uow.conn.execute(
                    "INSERT INTO spent_tokens (token_hash, scan_id, tenant_id, group_id, user_id, "
                    "outcome) VALUES ($1, $2, $3, $4, $5, 'joined')",
                    digest,
                    scan_id,
                    tenant_id,
                    group_id,
                    user_id,
                )
                await uow.conn.execute(
                    "UPDATE scan_facts SET joined_at = $2 WHERE scan_id = $1", scan_id, uow.now
                )
                stream = f"scan:{scan_id}"
                person = self.people.from_token(claimed)
                if person is None:  # the key was erased since, or the token is older
                    person = await self.people.get(uow.conn, tenant_id, user_id, group_id)
                uow.record(
                    JoinTokenRedeemed(
                        scan_id=scan_id,
                        group_id=group_id,
                        person=person.person,
                        user=person.user(user_id),
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
                    user_id=user_id,
                    person=person,
                    code_id=claimed["code_id"],
                    live_code_id=claimed["live_code_id"],
                    scan_id=scan_id,
                    request_id=None,
                    verification=claimed["verification"],
                    stream=stream,
                    version=3,
                    seat_reserved=True,
                )
        return await self._explain(tenant_id, digest, user_id, device_id)

    async def _explain(
        self, tenant_id: uuid.UUID, digest: bytes, user_id: str, device_id: str | None
    ) -> Joined:
        """Why the token could not be claimed: the answer for everyone who lost the race."""
        async with self.outbox.pool.acquire() as conn:
            held = await conn.fetchrow(
                "SELECT user_id, bind_device, device_id, expires_at <= now() AS expired "
                "FROM join_tokens WHERE token_hash = $1 AND tenant_id = $2",
                digest,
                tenant_id,
            )
            if held is not None:
                if held["user_id"] != user_id:
                    raise Refusal(
                        Reason.TOKEN_MISMATCH, "this join token was handed to another user"
                    )
                if held["expired"]:
                    raise Refusal(
                        Reason.TOKEN_EXPIRED, "this join token has expired; scan the code again"
                    )
                if held["bind_device"] and held["device_id"] != device_id:
                    raise Refusal(
                        Reason.TOKEN_MISMATCH,
                        "this join token is bound to the device that scanned the code",
                    )
                raise Refusal(
                    Reason.TOKEN_EXPIRED, "this join token has expired; scan the code again"
                )
            spent = await conn.fetchrow(
                "SELECT s.outcome, s.user_id, s.group_id, m.joined_at FROM spent_tokens s "
                "LEFT JOIN memberships m ON m.group_id = s.group_id AND m.user_id = s.user_id "
                "WHERE s.token_hash = $1 AND s.tenant_id = $2",
                digest,
                tenant_id,
            )
        if spent is None:
            raise Refusal(Reason.INVALID_TOKEN, "no such join token")
        if spent["outcome"] != "joined":
            raise Refusal(Reason.TOKEN_EXPIRED, "this join token has expired; scan the code again")
        if spent["user_id"] != user_id:
            raise Refusal(Reason.TOKEN_USED, "this join token has already been used")
        if spent["joined_at"] is None:
            raise Refusal(
                Reason.TOKEN_USED, "this join token was used, and the membership has ended"
            )
        # The same person redeeming the same token again gets the membership back.
        return Joined(Membership(spent["group_id"], user_id, spent["joined_at"]), created=False)
