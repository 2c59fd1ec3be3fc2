"""What the issuer's commands carry (commands.py): the integrator's options, validated field
by field as they are decoded (msgspec), before a handler checks what depends on the group
and its profile. The API takes its request bodies from here (api/schemas.py), so a command
and the request it came from cannot drift apart, and no command knows HTTP.

Fields that default to UNSET take their value from the group's profile when absent; sending
`null` where allowed means "none" (no cap, permanent).
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import UNSET, Meta, UnsetType

from shared.fields import Name

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
