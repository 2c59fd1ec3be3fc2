"""Erasure: destroying a person's keys, so what they sealed in the log is gone.

The log itself is never touched (its hashes would break, and it is the audit trail): what
disappears is the only way to read a person's values in it. Erasing a person (on request)
destroys all their keys, forgets their user id, and renames what the redeemer still keeps
about them (their memberships hold their seats under `erased:{person}`). Retention does the
same by day (background/retention.py). Both are recorded as events, which hold no
personal data.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from services.redeemer.domain.people import ERASED
from shared.crypto.user_index import UserIndex
from shared.events.redeemer import PersonForgotten
from shared.refusals import Reason, Refusal
from shared.rules.subjects import person_key
from shared.store.unit_of_work import Outbox


@dataclass(frozen=True)
class Forgotten:
    person: str
    keys_destroyed: int


async def forget(outbox: Outbox, users: UserIndex, tenant_id: uuid.UUID, user_id: str) -> Forgotten:
    """Erase one person of one tenant; `not_found` if the redeemer holds nothing of theirs.
    Every table that holds a value about them by their user id (or its keyed index) is
    reached here: tests/e2e/test_personal_data.py searches the whole database afterwards."""
    async with outbox.unit() as uow:
        conn = uow.conn
        person = await conn.fetchval(
            "DELETE FROM people WHERE tenant_id = $1 AND user_id = $2 RETURNING person",
            tenant_id,
            user_id,
        )
        if person is None:
            raise Refusal(Reason.NOT_FOUND, f"no personal data of {user_id!r} is held here")
        destroyed = await conn.fetchval(
            "WITH gone AS (DELETE FROM person_keys WHERE tenant_id = $1 AND person = $2 "
            "RETURNING 1) SELECT count(*) FROM gone",
            tenant_id,
            person,
        )
        erased = ERASED + person
        # Seats stay taken and counted: the memberships keep them under the new name.
        await conn.execute(
            "UPDATE memberships m SET user_id = $3 || m.person FROM groups g "
            "WHERE g.group_id = m.group_id AND g.tenant_id = $1 AND m.user_id = $2",
            tenant_id,
            user_id,
            ERASED,
        )
        await conn.execute(
            "UPDATE join_tokens SET user_id = $3, device_id = NULL "
            "WHERE tenant_id = $1 AND user_id = $2",
            tenant_id,
            user_id,
            erased,
        )
        await conn.execute(
            "UPDATE spent_tokens SET user_id = $3 WHERE tenant_id = $1 AND user_id = $2",
            tenant_id,
            user_id,
            erased,
        )
        await conn.execute(
            "UPDATE join_requests SET user_id = $3, real_name = NULL, display_name = NULL "
            "WHERE tenant_id = $1 AND user_id = $2",
            tenant_id,
            user_id,
            erased,
        )
        await conn.execute(
            "DELETE FROM verification_failures WHERE subject = $1",
            person_key(users, tenant_id, user_id),
        )
        # Answers kept for retries that name them (a scan's, a join's), and their rate bucket.
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND subjects @> ARRAY[$2::bytea]",
            str(tenant_id),
            users.of(tenant_id, user_id),
        )
        # (the lockout counts by the same key, shared/rules/subjects.py)
        await conn.execute(
            "DELETE FROM rate_buckets WHERE key = $1", person_key(users, tenant_id, user_id)
        )
        uow.record(
            PersonForgotten(person=person, keys_destroyed=destroyed),
            stream_id=f"person:{tenant_id}:{person}",
            version=1,
            tenant_id=tenant_id,
            key=person,
        )
    return Forgotten(person, destroyed)
