"""Retention: destroying the person keys of days older than a profile keeps (`personal`:
QUNMA_RETENTION_PERSONAL_DAYS, 7 by default, as WeChat keeps a personal group's invitation
records; every other profile: QUNMA_RETENTION_DAYS, 180), so what they sealed in the log is
gone, recorded as `PersonalDataExpired`. Erasing one person on request is
application/erasure.py.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, timedelta

import asyncpg

from shared.clock import Clock, utcnow
from shared.events.redeemer import PersonalDataExpired
from shared.ids import uuid7
from shared.store.unit_of_work import Outbox

log = logging.getLogger(__name__)

PERSONAL = "personal"


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
