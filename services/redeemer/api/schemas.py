"""The redeemer's request and response bodies."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

import msgspec
from msgspec import Meta

from shared.http.types import UserId

DeviceId = Annotated[str, Meta(min_length=1, max_length=128, pattern=r"^[^\x00-\x1f\x7f]+$")]


class ScanIn(msgspec.Struct, forbid_unknown_fields=True):
    payload: Annotated[str, Meta(min_length=1, max_length=2048)]
    user_id: UserId
    device_id: DeviceId | None = None


class JoinIn(msgspec.Struct, forbid_unknown_fields=True):
    join_token: Annotated[str, Meta(min_length=1, max_length=128)]
    user_id: UserId
    device_id: DeviceId | None = None


class GroupSummary(msgspec.Struct):
    group_id: uuid.UUID
    name: str
    member_count: int
    max_members: int


class Membership(msgspec.Struct):
    group_id: uuid.UUID
    user_id: str
    joined_at: datetime


class ScanOut(msgspec.Struct, omit_defaults=True):
    status: Literal["token", "member"]
    group: GroupSummary
    join_token: str | None = None
    expires_at: datetime | None = None
    membership: Membership | None = None


class MemberOut(msgspec.Struct):
    user_id: str
    joined_at: datetime


class MembersPage(msgspec.Struct):
    group_id: uuid.UUID
    member_count: int
    members: list[MemberOut]
    next_cursor: str | None
