"""The issuer's request and response bodies: validated on the way in, documented from here.

Fields that default to UNSET take their value from the group's profile when absent; sending
`null` where allowed means "none" (no cap, permanent).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from services.issuer.inputs import (
    AutoCreateIn,
    Channel,
    GeofenceIn,
    Profile,
    RuleIn,
    Scope,
    Status,
    Timezone,
)
from shared.fields import Name, Reason

# -- groups ----------------------------------------------------------------------------


class CreateGroupIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    profile: Profile = "personal"
    max_members: Annotated[int, Meta(ge=1, le=2000)] | UnsetType = UNSET
    timezone: Timezone = "Asia/Shanghai"


class GroupOut(msgspec.Struct, kw_only=True):
    """The group"""

    group_id: uuid.UUID
    name: str
    profile: str
    max_members: int
    timezone: str
    created_at: datetime
    member_count: int
    verified_joins: int
    live_code_id: uuid.UUID | None


class GroupList(msgspec.Struct):
    """A page of groups, newest first"""

    groups: list[GroupOut]
    next_cursor: str | None


class ListQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    limit: Annotated[int, Meta(ge=1, le=200)] = 50
    cursor: str | None = None


# -- codes -----------------------------------------------------------------------------


class RevokeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason = "revoked by the integrator"


class CodesQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    group_id: uuid.UUID | None = None
    status: Status | None = None
    channel: Channel | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] = 50
    cursor: str | None = None


class GroupCodesQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: Status | None = None
    channel: Channel | None = None
    limit: Annotated[int, Meta(ge=1, le=200)] = 50
    cursor: str | None = None


class VerificationOut(msgspec.Struct, omit_defaults=True, kw_only=True):
    mode: str
    invite_code: str | None = None
    phone_last4_count: int | None = None


class Counters(msgspec.Struct, kw_only=True):
    """Learned from the redeemer's events, so a moment behind the scans themselves."""

    scans_used: int
    scans_today: int
    scans_remaining: int | None
    scans_today_remaining: int | None
    scans_rejected: int
    joins: int
    last_scan_at: datetime | None


class CodeLinks(msgspec.Struct):
    qr_png: str
    qr_svg: str
    qr_pdf: str
    qr_eps: str
    poster_pdf: str


class CodeOut(msgspec.Struct, kw_only=True):
    """The code"""

    code_id: uuid.UUID
    group_id: uuid.UUID
    status: Status
    payload: str
    issued_at: datetime
    not_before: datetime | None
    expires_at: datetime | None
    max_scans: int | None
    daily_scan_limit: int | None
    verification: VerificationOut
    ip_allowlist: list[str]
    geofence: GeofenceIn | None
    bind_device: bool
    fallback_url: str | None
    channel: str | None
    key_id: str
    revoked_at: datetime | None
    revoke_reason: str | None
    superseded_at: datetime | None
    superseded_by: uuid.UUID | None
    counters: Counters
    links: CodeLinks


class CodeList(msgspec.Struct):
    """A page of codes, newest first"""

    codes: list[CodeOut]
    next_cursor: str | None


# -- live codes ------------------------------------------------------------------------


class LiveGroupOut(msgspec.Struct, kw_only=True):
    group_id: uuid.UUID
    name: str
    member_count: int
    max_members: int


class LiveLinks(msgspec.Struct):
    qr_png: str
    qr_svg: str
    qr_pdf: str
    qr_eps: str
    poster_pdf: str


class LiveCodeOut(msgspec.Struct, kw_only=True):
    """The live code"""

    live_code_id: uuid.UUID
    name: str
    status: Literal["active", "revoked"]
    payload: str
    strategy: str
    switch_at: int | None
    rules: list[RuleIn]
    auto_create: AutoCreateIn | None
    fallback_url: str | None
    channel: str | None
    groups: list[LiveGroupOut]
    scans_used: int
    scans_rejected: int
    joins: int
    key_id: str
    created_at: datetime
    revoked_at: datetime | None
    revoke_reason: str | None
    links: LiveLinks


class LiveCodeList(msgspec.Struct):
    """A page of live codes, newest first"""

    live_codes: list[LiveCodeOut]
    next_cursor: str | None


# -- keys ------------------------------------------------------------------------------


class RateLimitIn(msgspec.Struct, forbid_unknown_fields=True):
    """This key's own rate limit, above or below the deployment's"""

    per_second: Annotated[int, Meta(ge=1, le=100_000)]
    burst: Annotated[int, Meta(ge=1, le=1_000_000)] | UnsetType = UNSET  # default: 2 s' worth


class RateLimitOut(msgspec.Struct):
    per_second: int
    burst: int


class CreateApiKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    scopes: Annotated[list[Scope], Meta(min_length=1, max_length=4)]
    rate_limit: RateLimitIn | UnsetType = UNSET


class ApiKeyOut(msgspec.Struct, kw_only=True, omit_defaults=True):
    """The API key (the secret only when it is created)"""

    key_id: uuid.UUID
    name: str
    scopes: list[str]
    created_at: datetime
    revoked_at: datetime | None = None
    api_key: str | None = None
    rate_limit: RateLimitOut | None = None  # None: the deployment's limit


class ApiKeyList(msgspec.Struct):
    """Every API key of the tenant, without the secrets"""

    api_keys: list[ApiKeyOut]


class SigningKeyOut(msgspec.Struct, kw_only=True):
    """A signing key"""

    key_id: str
    algorithm: str
    public_key: str
    status: Literal["active", "retired"]
    created_at: datetime
    retired_at: datetime | None
    needed: bool


class SigningKeyList(msgspec.Struct):
    """The tenant's signing keys"""

    signing_keys: list[SigningKeyOut]


class ImageQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    scale: Annotated[int, Meta(ge=1, le=40)] = 8
    border: Annotated[int, Meta(ge=0, le=20)] = 4
    dark: Annotated[str, Meta(pattern=r"^#?[0-9a-fA-F]{6}$")] = "#000000"
    light: Annotated[str, Meta(pattern=r"^(#?[0-9a-fA-F]{6}|transparent)$")] = "#ffffff"
    error: Literal["L", "M", "Q", "H"] = "M"


Domain = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=253,
        pattern=r"^(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)*"
        r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.?$",
        description="a DNS name; its subdomains are included",
    ),
]


class TenantSettingsIn(msgspec.Struct, forbid_unknown_fields=True):
    # null: any host; a list: fallback URLs must point to one of these or a subdomain
    fallback_domains: Annotated[list[Domain], Meta(max_length=100)] | UnsetType | None = UNSET


class TenantOut(msgspec.Struct):
    """The tenant and its settings"""

    tenant_id: uuid.UUID
    name: str
    created_at: datetime
    fallback_domains: list[str] | None
