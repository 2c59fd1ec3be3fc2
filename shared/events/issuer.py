"""The issuer's vocabulary: tenants, API keys, signing keys, groups and codes."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.events.base import Event, event_type


@event_type
class TenantCreated(Event, frozen=True):
    tenant_id: uuid.UUID
    name: str


@event_type
class ApiKeyCreated(Event, frozen=True):
    """Carries only the key's SHA-256, so the redeemer can authenticate callers too."""

    key_id: uuid.UUID
    name: str
    key_hash: str
    scopes: list[str]


@event_type
class ApiKeyRevoked(Event, frozen=True):
    key_id: uuid.UUID


@event_type
class SigningKeyAdded(Event, frozen=True):
    """A public Ed25519 key (base64url, RFC 8032) that code tokens may be signed with."""

    key_id: str
    algorithm: str
    public_key: str


@event_type
class GroupCreated(Event, frozen=True):
    group_id: uuid.UUID
    name: str
    max_members: int


@event_type
class CodeIssued(Event, frozen=True):
    code_id: uuid.UUID
    group_id: uuid.UUID
    key_id: str
    payload: str
    issued_at: datetime
    expires_at: datetime | None
    max_scans: int | None


@event_type
class CodeRevoked(Event, frozen=True):
    code_id: uuid.UUID
    group_id: uuid.UUID
    reason: str
