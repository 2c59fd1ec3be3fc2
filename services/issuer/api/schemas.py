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

from shared.http.types import Name, Reason

DAY = 86_400

Profile = Literal["personal", "wecom_external", "wecom_internal", "qq", "gov"]
Mode = Literal["none", "invite_code", "phone_last4", "approval", "real_name"]
Strategy = Literal["fill_in_order", "round_robin", "least_full", "by_attribute"]
Scope = Literal["issue", "redeem", "audit", "admin"]
Status = Literal["active", "scheduled", "expired", "revoked", "superseded"]
Url = Annotated[
    str, Meta(max_length=512, pattern=r"^https?://[^\s]+$", description="an http or https URL")
]
Channel = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        pattern=r"^[^\x00-\x1f\x7f]+$",
        description="a free attribution label, like WeCom's `state`",
    ),
]
Timezone = Annotated[str, Meta(min_length=1, max_length=64, description="an IANA time zone")]
Ttl = Annotated[int, Meta(ge=60, le=3650 * DAY, description="seconds")]
Cap = Annotated[int, Meta(ge=1, le=1_000_000)]
AwareTime = Annotated[datetime, Meta(tz=True)]
Digits4 = Annotated[str, Meta(pattern=r"^[0-9]{4}$")]
InviteCode = Annotated[
    str, Meta(pattern=r"^[A-Za-z0-9]{4,16}$", description="4–16 letters or digits")
]
Cidr = Annotated[str, Meta(min_length=2, max_length=49, description="an IPv4 or IPv6 CIDR")]
GroupIds = Annotated[list[uuid.UUID], Meta(min_length=1, max_length=100)]


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


class VerificationIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    mode: Mode | UnsetType = UNSET
    invite_code: InviteCode | UnsetType = UNSET
    phone_last4: Annotated[list[Digits4], Meta(min_length=1, max_length=10_000)] | UnsetType = UNSET


class GeofenceIn(msgspec.Struct, forbid_unknown_fields=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    radius_m: Annotated[int, Meta(ge=10, le=100_000)]


class IssueCodeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    ttl_seconds: Ttl | UnsetType | None = UNSET
    not_before: AwareTime | UnsetType = UNSET
    max_scans: Cap | UnsetType | None = UNSET
    daily_scan_limit: Cap | UnsetType | None = UNSET
    verification: VerificationIn | UnsetType = UNSET
    ip_allowlist: Annotated[list[Cidr], Meta(max_length=50)] = []
    geofence: GeofenceIn | None = None
    bind_device: bool = False
    fallback_url: Url | None = None
    rotate: bool | UnsetType = UNSET
    channel: Channel | None = None


class PatchCodeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    expires_at: AwareTime | UnsetType | None = UNSET
    max_scans: Cap | UnsetType | None = UNSET
    daily_scan_limit: Cap | UnsetType | None = UNSET
    fallback_url: Url | UnsetType | None = UNSET
    channel: Channel | UnsetType | None = UNSET


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


class RuleIn(msgspec.Struct, forbid_unknown_fields=True):
    match: Annotated[
        dict[
            Annotated[str, Meta(min_length=1, max_length=32)],
            Annotated[
                list[Annotated[str, Meta(max_length=64)]], Meta(min_length=1, max_length=100)
            ],
        ],
        Meta(min_length=1, max_length=10),
    ]
    group_id: uuid.UUID


class AutoCreateIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    base_name: Annotated[
        str, Meta(min_length=1, max_length=56, pattern=r"^(?!\s*$)[^\x00-\x1f\x7f]+$")
    ]
    max_members: Annotated[int, Meta(ge=1, le=2000)] | UnsetType = UNSET
    max_groups: Annotated[int, Meta(ge=1, le=100)] = 10
    profile: Profile | UnsetType = UNSET


class CreateLiveCodeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name
    group_ids: GroupIds
    strategy: Strategy = "fill_in_order"
    switch_at: Annotated[int, Meta(ge=1, le=2000)] | None = None
    rules: Annotated[list[RuleIn], Meta(max_length=100)] = []
    auto_create: AutoCreateIn | None = None
    fallback_url: Url | None = None
    channel: Channel | None = None


class PatchLiveCodeIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    name: Name | UnsetType = UNSET
    add_group_ids: Annotated[list[uuid.UUID], Meta(max_length=100)] = []
    remove_group_ids: Annotated[list[uuid.UUID], Meta(max_length=100)] = []
    strategy: Strategy | UnsetType = UNSET
    switch_at: Annotated[int, Meta(ge=1, le=2000)] | UnsetType | None = UNSET
    rules: Annotated[list[RuleIn], Meta(max_length=100)] | UnsetType = UNSET
    auto_create: AutoCreateIn | UnsetType | None = UNSET
    fallback_url: Url | UnsetType | None = UNSET
    channel: Channel | UnsetType | None = UNSET


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
