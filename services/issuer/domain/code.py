"""The code aggregate: one signed QR code, its limits and its fate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.events import Event
from shared.events.issuer import CodeIssued, CodeRevoked
from shared.store.eventstore import Recorded

DEFAULT_TTL = timedelta(days=7)
DEFAULT_MAX_SCANS = 100


def stream(code_id: uuid.UUID) -> str:
    return f"code:{code_id}"


@dataclass(frozen=True)
class Code:
    code_id: uuid.UUID
    tenant_id: uuid.UUID
    group_id: uuid.UUID
    key_id: str
    payload: str
    issued_at: datetime
    expires_at: datetime | None
    max_scans: int | None
    version: int
    revoked_at: datetime | None = None
    revoke_reason: str | None = None

    def status(self, now: datetime) -> str:
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= now:
            return "expired"
        return "active"


def mutate(state: Code | None, record: Recorded) -> Code:
    event = record.event
    if isinstance(event, CodeIssued):
        assert record.tenant_id is not None
        return Code(
            event.code_id,
            record.tenant_id,
            event.group_id,
            event.key_id,
            event.payload,
            event.issued_at,
            event.expires_at,
            event.max_scans,
            record.version,
        )
    assert state is not None, f"{type(event).__name__} before CodeIssued"
    state = replace(state, version=record.version)
    if isinstance(event, CodeRevoked):
        return replace(state, revoked_at=record.occurred_at, revoke_reason=event.reason)
    return state


def fold(history: list[Recorded]) -> Code | None:
    state: Code | None = None
    for record in history:
        state = mutate(state, record)
    return state


def revoke(code: Code, reason: str) -> list[Event]:
    """Revoking is idempotent: a code already revoked stays as it was."""
    if code.revoked_at is not None:
        return []
    return [CodeRevoked(code_id=code.code_id, group_id=code.group_id, reason=reason)]
