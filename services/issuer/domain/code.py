"""The code aggregate: one signed QR code, its limits and its fate."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime

import msgspec

from shared.events import Event
from shared.events.issuer import (
    CodeAmended,
    CodeIssued,
    CodeRevoked,
    CodeSuperseded,
    Geofence,
    Verification,
)
from shared.events.recorded import Recorded
from shared.rules import code_status

# Past use: what a rotation leaves alone (a scheduled code can still be superseded).
DEAD = frozenset({"revoked", "superseded", "expired"})


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
    not_before: datetime | None = None
    daily_scan_limit: int | None = None
    verification: Verification = field(default_factory=Verification)
    ip_allowlist: tuple[str, ...] = ()
    geofence: Geofence | None = None
    bind_device: bool = False
    fallback_url: str | None = None
    channel: str | None = None
    revoked_at: datetime | None = None
    revoke_reason: str | None = None
    superseded_at: datetime | None = None
    superseded_by: uuid.UUID | None = None

    def status(self, now: datetime) -> code_status.Status:
        return code_status.status(
            revoked=self.revoked_at is not None,
            superseded=self.superseded_at is not None,
            not_before=self.not_before,
            expires_at=self.expires_at,
            now=now,
        )


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
            not_before=event.not_before,
            daily_scan_limit=event.daily_scan_limit,
            verification=event.verification,
            ip_allowlist=tuple(event.ip_allowlist),
            geofence=event.geofence,
            bind_device=event.bind_device,
            fallback_url=event.fallback_url,
            channel=event.channel,
        )
    assert state is not None, f"{type(event).__name__} before CodeIssued"
    state = replace(state, version=record.version)
    if isinstance(event, CodeRevoked):
        return replace(state, revoked_at=record.occurred_at, revoke_reason=event.reason)
    if isinstance(event, CodeSuperseded):
        return replace(state, superseded_at=record.occurred_at, superseded_by=event.by_code_id)
    if isinstance(event, CodeAmended):
        return replace(state, **{name: getattr(event, name) for name in event.changed})
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


def supersede(code: Code, by: uuid.UUID, now: datetime) -> list[Event]:
    """Rotation: a newer code of the group replaces this one, unless it is already dead."""
    if code.status(now) in DEAD:
        return []
    return [CodeSuperseded(code_id=code.code_id, group_id=code.group_id, by_code_id=by)]


def amend(code: Code, changes: dict[str, object]) -> list[Event]:
    """One CodeAmended naming what really changed; nothing when nothing did."""
    changed = sorted(k for k, v in changes.items() if getattr(code, k) != v)
    if not changed:
        return []
    fields = {
        "code_id": code.code_id,
        "group_id": code.group_id,
        "changed": changed,
        **{k: changes[k] for k in changed},
    }
    return [msgspec.convert(fields, CodeAmended)]
