"""Creating groups under a profile."""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from services.issuer.commands import CreateGroup
from services.issuer.domain import group as groups
from services.issuer.handlers.deps import Deps
from shared.events.issuer import GroupCreated
from shared.ids import uuid7
from shared.refusals import Reason, Refusal
from shared.rules.profiles import profile
from shared.store.unit_of_work import UnitOfWork


def check_timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise Refusal(
            Reason.INVALID_REQUEST, f"timezone {name!r} is not an IANA time zone"
        ) from None
    return name


async def create_group(cmd: CreateGroup, deps: Deps) -> uuid.UUID:
    rules = profile(cmd.profile)
    event = GroupCreated(
        group_id=uuid7(),
        name=cmd.name,
        max_members=rules.members(cmd.max_members),
        profile=rules.name,
        timezone=check_timezone(cmd.timezone),
    )

    async def decide(uow: UnitOfWork) -> uuid.UUID:
        uow.record(
            event,
            stream_id=groups.stream(event.group_id),
            version=1,
            tenant_id=cmd.tenant_id,
            key=str(event.group_id),
        )
        return event.group_id

    return await deps.outbox.run(decide)
