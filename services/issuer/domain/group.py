"""The group aggregate: a chat group that codes invite people into."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from shared.events.issuer import GroupCreated
from shared.events.recorded import Recorded


def stream(group_id: uuid.UUID) -> str:
    return f"group:{group_id}"


@dataclass(frozen=True)
class Group:
    group_id: uuid.UUID
    tenant_id: uuid.UUID
    name: str
    max_members: int
    created_at: datetime
    version: int
    profile: str = "personal"
    timezone: str = "Asia/Shanghai"
    live_code_id: uuid.UUID | None = None


def mutate(state: Group | None, record: Recorded) -> Group:
    event = record.event
    if isinstance(event, GroupCreated):
        assert record.tenant_id is not None
        return Group(
            event.group_id,
            record.tenant_id,
            event.name,
            event.max_members,
            record.occurred_at,
            record.version,
            event.profile,
            event.timezone,
            event.live_code_id,
        )
    assert state is not None, f"{type(event).__name__} before GroupCreated"
    return replace(state, version=record.version)


def fold(history: list[Recorded]) -> Group | None:
    state: Group | None = None
    for record in history:
        state = mutate(state, record)
    return state
