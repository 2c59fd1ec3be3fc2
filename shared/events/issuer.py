"""The issuer's vocabulary: tenants, API keys, signing keys, groups, codes and live codes.

Fields added after an event type first shipped have defaults, so older events decode.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from shared.events.base import Event, event_type


@event_type
class TenantCreated(Event, frozen=True):
    tenant_id: uuid.UUID
    name: str


class KeyRate(msgspec.Struct, frozen=True):
    """An API key's own rate limit: `per_second` on average, `burst` at once."""

    per_second: int
    burst: int


@event_type
class ApiKeyCreated(Event, frozen=True):
    """Carries only the key's SHA-256, so the redeemer can authenticate callers too.
    `rate_limit` is the key's own limit; absent, the deployment's applies."""

    key_id: uuid.UUID
    name: str
    key_hash: str
    scopes: list[str]
    rate_limit: KeyRate | None = None


@event_type
class TenantSettingsChanged(Event, frozen=True):
    """`fallback_domains`: the hosts (and their subdomains) a fallback URL of this tenant's
    codes and live codes may point to; None: any."""

    fallback_domains: list[str] | None = None


@event_type
class ApiKeyRevoked(Event, frozen=True):
    key_id: uuid.UUID


@event_type
class SigningKeyAdded(Event, frozen=True):
    """A public Ed25519 key (base64url, RFC 8032); new codes are signed with it from now on."""

    key_id: str
    algorithm: str
    public_key: str


@event_type
class SigningKeyRetired(Event, frozen=True):
    """No new code is signed with this key; codes it signed stay valid until they end."""

    key_id: str


@event_type
class GroupCreated(Event, frozen=True):
    group_id: uuid.UUID
    name: str
    max_members: int
    profile: str = "personal"
    timezone: str = "Asia/Shanghai"
    # Set when the issuer opened the group itself for a full live code (auto_create).
    live_code_id: uuid.UUID | None = None


class Verification(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    """How a person proves they may join. The invite code travels only as a hash."""

    mode: str = "none"
    # SHA-256 hex of the code id's 16 bytes followed by the invite code (UTF-8).
    invite_code_hash: str | None = None
    # phone_last4: when set, the digits the person presents must be one of these.
    phone_last4: list[str] | None = None


class Geofence(msgspec.Struct, frozen=True):
    lat: float
    lon: float
    radius_m: int


@event_type
class CodeIssued(Event, frozen=True):
    code_id: uuid.UUID
    group_id: uuid.UUID
    key_id: str
    payload: str
    issued_at: datetime
    expires_at: datetime | None
    max_scans: int | None
    not_before: datetime | None = None
    daily_scan_limit: int | None = None
    verification: Verification = Verification()
    ip_allowlist: list[str] = msgspec.field(default_factory=list)
    geofence: Geofence | None = None
    bind_device: bool = False
    fallback_url: str | None = None
    channel: str | None = None


@event_type
class CodeRevoked(Event, frozen=True):
    code_id: uuid.UUID
    group_id: uuid.UUID
    reason: str


@event_type
class CodeSuperseded(Event, frozen=True):
    """A newer code of the same group replaced this one (rotation): it is dead at once."""

    code_id: uuid.UUID
    group_id: uuid.UUID
    by_code_id: uuid.UUID


# What a code's amendment can change: the fields of CodeAmended after `changed`.
AMENDABLE = ("expires_at", "max_scans", "daily_scan_limit", "fallback_url", "channel")


@event_type
class CodeAmended(Event, frozen=True):
    """Fields named in `changed` now have the values given here (the others are unchanged)."""

    code_id: uuid.UUID
    group_id: uuid.UUID
    changed: list[str]
    expires_at: datetime | None = None
    max_scans: int | None = None
    daily_scan_limit: int | None = None
    fallback_url: str | None = None
    channel: str | None = None


class RouteRule(msgspec.Struct, frozen=True):
    """`by_attribute`: the first rule whose every attribute matches sends the scan to group_id.
    An attribute matches when the scanner's value (or one of its values) is in the list."""

    match: dict[str, list[str]]
    group_id: uuid.UUID


class AutoCreate(msgspec.Struct, frozen=True):
    base_name: str
    max_members: int
    max_groups: int
    profile: str


@event_type
class LiveCodeConfigured(Event, frozen=True):
    """A live code (活码): one stable QR spread over several groups. Every change of its
    configuration is a new LiveCodeConfigured with the whole configuration."""

    live_code_id: uuid.UUID
    name: str
    group_ids: list[uuid.UUID]
    strategy: str
    switch_at: int | None
    rules: list[RouteRule]
    auto_create: AutoCreate | None
    fallback_url: str | None
    key_id: str
    payload: str
    channel: str | None = None


@event_type
class LiveCodeRevoked(Event, frozen=True):
    live_code_id: uuid.UUID
    reason: str
