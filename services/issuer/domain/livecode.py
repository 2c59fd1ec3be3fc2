"""The live code aggregate (活码): one stable QR code spread over several groups."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime

from shared.events.issuer import AutoCreate, LiveCodeConfigured, LiveCodeRevoked, RouteRule
from shared.events.recorded import Recorded

STRATEGIES = ("fill_in_order", "round_robin", "least_full", "by_attribute")
MAX_GROUPS = 100


def stream(live_code_id: uuid.UUID) -> str:
    return f"live:{live_code_id}"


@dataclass(frozen=True)
class LiveCode:
    live_code_id: uuid.UUID
    tenant_id: uuid.UUID
    config: LiveCodeConfigured
    created_at: datetime
    version: int
    revoked_at: datetime | None = None
    revoke_reason: str | None = None

    @property
    def group_ids(self) -> list[uuid.UUID]:
        return list(self.config.group_ids)

    def status(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"

    def reconfigured(self, **changes: object) -> LiveCodeConfigured:
        """The whole configuration with `changes` applied, as the next event."""
        fields = {f: getattr(self.config, f) for f in self.config.__struct_fields__}
        fields.update(changes)
        return LiveCodeConfigured(**fields)

    def next_group_name(self) -> str:
        assert self.config.auto_create is not None
        return f"{self.config.auto_create.base_name} {len(self.config.group_ids) + 1}"

    def may_open_group(self, groups_seen: int) -> bool:
        """auto_create: open a group when every one of the `groups_seen` groups is full,
        once only (a second report about the same set finds the set has grown)."""
        auto = self.config.auto_create
        return (
            self.revoked_at is None
            and auto is not None
            and len(self.config.group_ids) == groups_seen
            and groups_seen < auto.max_groups
        )


def mutate(state: LiveCode | None, record: Recorded) -> LiveCode:
    event = record.event
    if isinstance(event, LiveCodeConfigured):
        if state is None:
            assert record.tenant_id is not None
            return LiveCode(
                event.live_code_id, record.tenant_id, event, record.occurred_at, record.version
            )
        return replace(state, config=event, version=record.version)
    assert state is not None, f"{type(event).__name__} before LiveCodeConfigured"
    if isinstance(event, LiveCodeRevoked):
        return replace(
            state, revoked_at=record.occurred_at, revoke_reason=event.reason, version=record.version
        )
    return replace(state, version=record.version)


def fold(history: list[Recorded]) -> LiveCode | None:
    state: LiveCode | None = None
    for record in history:
        state = mutate(state, record)
    return state


__all__ = ["STRATEGIES", "AutoCreate", "LiveCode", "RouteRule", "fold", "mutate", "stream"]
