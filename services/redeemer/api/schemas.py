"""The redeemer's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from shared.fields import Reason, UserId

DeviceId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]
AttributeValue = Annotated[str, Meta(max_length=64)]


class LocationIn(msgspec.Struct, forbid_unknown_fields=True):
    lat: Annotated[float, Meta(ge=-90, le=90)]
    lon: Annotated[float, Meta(ge=-180, le=180)]
    accuracy_m: Annotated[float, Meta(ge=0, le=100_000)] | None = None


class ScanIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    payload: Annotated[
        str,
        Meta(
            min_length=1, max_length=2048, description="the QR text as scanned, or the bare token"
        ),
    ]
    user_id: UserId
    device_id: DeviceId | None = None
    location: LocationIn | None = None
    invite_code: Annotated[str, Meta(min_length=1, max_length=32)] | None = None
    phone_last4: Annotated[str, Meta(pattern=r"^[0-9]{4}$")] | None = None
    real_name: (
        Annotated[str, Meta(min_length=1, max_length=64, pattern=r"^[^\x00-\x1f\x7f]+$")] | None
    ) = None
    display_name: (
        Annotated[
            str,
            Meta(
                min_length=1,
                max_length=32,
                pattern=r"^[^\x00-\x1f\x7f]+$",
                description="the name the person shows in the group (sealed in the log)",
            ),
        ]
        | None
    ) = None
    attributes: Annotated[
        dict[
            Annotated[str, Meta(min_length=1, max_length=32)],
            AttributeValue | Annotated[list[AttributeValue], Meta(max_length=50)],
        ],
        Meta(max_length=20, description="what `by_attribute` live codes route on: city, tags…"),
    ] = {}


class JoinIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    join_token: Annotated[str, Meta(min_length=1, max_length=128)]
    user_id: UserId
    device_id: DeviceId | None = None


class GroupSummary(msgspec.Struct):
    group_id: uuid.UUID
    name: str
    member_count: int
    max_members: int


class Membership(msgspec.Struct):
    """The membership"""

    group_id: uuid.UUID
    user_id: str
    joined_at: datetime


class ScanOut(msgspec.Struct, omit_defaults=True, kw_only=True):
    """A join token (200), an existing membership (200), or a pending join request (202)"""

    status: Literal["token", "member", "pending"]
    group: GroupSummary
    join_token: str | None = None
    expires_at: datetime | None = None
    membership: Membership | None = None
    join_request_id: uuid.UUID | None = None


class MemberOut(msgspec.Struct):
    user_id: str
    joined_at: datetime


class MembersPage(msgspec.Struct):
    """Members, oldest first"""

    group_id: uuid.UUID
    member_count: int
    members: list[MemberOut]
    next_cursor: str | None


class PageQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    cursor: str | None = None


class JoinRequestsQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    status: Literal["pending", "approved", "declined"] = "pending"
    limit: Annotated[int, Meta(ge=1, le=1000)] = 100
    cursor: str | None = None


class JoinRequestOut(msgspec.Struct, kw_only=True):
    """A join request"""

    join_request_id: uuid.UUID
    group_id: uuid.UUID
    user_id: str
    mode: str
    real_name: str | None
    display_name: str | None = None
    status: str
    created_at: datetime
    decided_at: datetime | None
    decline_reason: str | None
    code_id: uuid.UUID | None


class JoinRequestList(msgspec.Struct):
    """Join requests, oldest first"""

    join_requests: list[JoinRequestOut]
    next_cursor: str | None


class DeclineIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason | None = None


class StatsQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    days: Annotated[int, Meta(ge=1, le=366)] = 30


class Bucket(msgspec.Struct, kw_only=True):
    start: str  # local date (YYYY-MM-DD) or local hour (YYYY-MM-DDTHH:00)
    accepted: int
    rejected: int
    joins: int


class Totals(msgspec.Struct, kw_only=True):
    scans: int
    accepted: int
    rejected: int
    rejected_by_reason: dict[str, int]
    already_members: int
    join_requests: int
    joins: int
    conversion: float | None  # joins / accepted scans


class GroupTally(msgspec.Struct, kw_only=True):
    group_id: uuid.UUID
    accepted: int
    joins: int


class ChannelTally(msgspec.Struct, kw_only=True):
    channel: str | None
    accepted: int
    rejected: int
    joins: int


class StatsOut(msgspec.Struct, kw_only=True):
    """Scans and joins, in the group's time zone"""

    timezone: str
    since: date
    totals: Totals
    by_day: list[Bucket]
    by_hour: list[Bucket]
    by_channel: list[ChannelTally]
    by_group: list[GroupTally]
