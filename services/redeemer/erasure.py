"""Erasure and retention: destroying person keys, so what they sealed in the log is gone.

The log itself is never touched (its hashes would break, and it is the audit trail): what
disappears is the only way to read a person's values in it. Erasing a person (on request)
destroys all their keys, forgets their user id, and renames what the redeemer still keeps
about them (their memberships hold their seats under `erased:{person}`); retention destroys
the keys of days older than a profile keeps (`personal`: QUNMA_RETENTION_PERSONAL_DAYS,
7 by default, as WeChat keeps a personal group's invitation records; every other profile:
QUNMA_RETENTION_DAYS, 180). Both are recorded as events, which hold no personal data.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from dataclasses import dataclass
from datetime import UTC, timedelta

import asyncpg

from services.redeemer.lockout import person_subject
from services.redeemer.people import ERASED
from shared.clock import Clock, utcnow
from shared.crypto.user_index import UserIndex
from shared.events.redeemer import PersonalDataExpired, PersonForgotten
from shared.http.problems import Problem
from shared.http.ratelimit import user_bucket_key
from shared.ids import uuid7
from shared.store.unit_of_work import Outbox

log = logging.getLogger(__name__)

PERSONAL = "personal"


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
            raise Problem("not_found", f"no personal data of {user_id!r} is held here")
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
            person_subject(users, tenant_id, user_id),
        )
        # Answers kept for retries that name them (a scan's, a join's), and their rate bucket.
        await conn.execute(
            "DELETE FROM idempotency_keys WHERE scope = $1 AND subjects @> ARRAY[$2::bytea]",
            str(tenant_id),
            users.of(tenant_id, user_id),
        )
        await conn.execute(
            "DELETE FROM rate_buckets WHERE key = $1", user_bucket_key(users, tenant_id, user_id)
        )
        uow.record(
            PersonForgotten(person=person, keys_destroyed=destroyed),
            stream_id=f"person:{tenant_id}:{person}",
            version=1,
            tenant_id=tenant_id,
            key=person,
        )
    return Forgotten(person, destroyed)


@dataclass(frozen=True)
class RetentionPolicy:
    personal_days: int = 7
    other_days: int = 180

    def days(self, profile: str) -> int:
        return self.personal_days if profile == PERSONAL else self.other_days


class Retention:
    """Destroys expired person keys, at start and then every `interval` seconds."""

    def __init__(
        self,
        outbox: Outbox,
        policy: RetentionPolicy,
        *,
        clock: Clock = utcnow,
        interval: float = 3600.0,
    ) -> None:
        self.outbox = outbox
        self.policy = policy
        self.clock = clock
        self.interval = interval

    async def apply(self) -> list[PersonalDataExpired]:
        """One pass; returns what it destroyed, as the events it recorded."""
        today = self.clock().astimezone(UTC).date()
        done: list[PersonalDataExpired] = []
        async with self.outbox.pool.acquire() as conn:
            profiles = [
                r["class"] for r in await conn.fetch("SELECT DISTINCT class FROM person_keys")
            ]
        for profile in sorted(profiles):
            # A key of day D seals events of day D: they are kept `days` full days after.
            through = today - timedelta(days=self.policy.days(profile) + 1)
            async with self.outbox.unit() as uow:
                destroyed = await uow.conn.fetchval(
                    "WITH gone AS (DELETE FROM person_keys WHERE class = $1 AND day <= $2 "
                    "RETURNING 1) SELECT count(*) FROM gone",
                    profile,
                    through,
                )
                # Names on join requests decided before then go too.
                await uow.conn.execute(
                    "UPDATE join_requests r SET real_name = NULL, display_name = NULL "
                    "FROM groups g WHERE g.group_id = r.group_id AND g.profile = $1 "
                    "AND r.status <> 'pending' AND r.decided_at < $2 "
                    "AND (r.real_name IS NOT NULL OR r.display_name IS NOT NULL)",
                    profile,
                    through + timedelta(days=1),
                )
                if destroyed:
                    event = PersonalDataExpired(
                        profile=profile, through=through, keys_destroyed=destroyed
                    )
                    uow.record(
                        event,
                        stream_id=f"retention:{uuid7()}",
                        version=1,
                        tenant_id=None,
                        key=f"retention:{profile}",
                    )
                    done.append(event)
        return done

    async def run(self) -> None:
        while True:
            try:
                for expired in await self.apply():
                    log.info(
                        "retention: %d person keys of %s groups destroyed (through %s)",
                        expired.keys_destroyed,
                        expired.profile,
                        expired.through,
                    )
            except asyncio.CancelledError:
                raise
            except (asyncpg.PostgresError, OSError) as exc:
                log.warning("retention failed: %s", exc)
            await asyncio.sleep(self.interval)
