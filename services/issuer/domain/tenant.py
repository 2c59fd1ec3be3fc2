"""The tenant aggregate: an enterprise, its API keys and its signing keys."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace

from shared.events.issuer import (
    ApiKeyCreated,
    ApiKeyRevoked,
    SigningKeyAdded,
    SigningKeyRetired,
    TenantCreated,
    TenantSettingsChanged,
)
from shared.events.recorded import Recorded


def stream(tenant_id: uuid.UUID) -> str:
    return f"tenant:{tenant_id}"


@dataclass(frozen=True)
class Tenant:
    tenant_id: uuid.UUID
    name: str
    version: int
    api_keys: frozenset[uuid.UUID] = field(default_factory=frozenset)
    signing_keys: tuple[str, ...] = ()
    active_key: str | None = None
    fallback_domains: tuple[str, ...] | None = None


def mutate(state: Tenant | None, record: Recorded) -> Tenant:
    event = record.event
    if isinstance(event, TenantCreated):
        return Tenant(event.tenant_id, event.name, record.version)
    assert state is not None, f"{type(event).__name__} before TenantCreated"
    state = replace(state, version=record.version)
    if isinstance(event, ApiKeyCreated):
        return replace(state, api_keys=state.api_keys | {event.key_id})
    if isinstance(event, ApiKeyRevoked):
        return replace(state, api_keys=state.api_keys - {event.key_id})
    if isinstance(event, SigningKeyAdded):
        return replace(
            state, signing_keys=(*state.signing_keys, event.key_id), active_key=event.key_id
        )
    if isinstance(event, SigningKeyRetired) and state.active_key == event.key_id:
        return replace(state, active_key=None)
    if isinstance(event, TenantSettingsChanged):
        domains = event.fallback_domains
        return replace(state, fallback_domains=None if domains is None else tuple(domains))
    return state


def fold(history: list[Recorded]) -> Tenant | None:
    state: Tenant | None = None
    for record in history:
        state = mutate(state, record)
    return state
