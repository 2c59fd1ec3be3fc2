"""The redeemer's vocabulary: every scan decision, join, join request and released seat.

A scan is its own stream, `scan:{scan_id}`: version 1 is the decision, version 2 what
became of its token (redeemed or expired), version 3 the membership it made. A join
request is `request:{request_id}`. From these events alone every counter the redeemer
keeps (scans, seats, members) can be recomputed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from shared.events.base import Event, event_type


@event_type
class ScanAccepted(Event, frozen=True):
    """A scan passed every check: one scan counted, one token handed out.

    It reserves a seat, unless the same person's unredeemed token for the group was
    replaced (`replaces_scan_id`): then the seat that token held passes to this one.
    `day` is the local date in the group's time zone, the day the daily cap counted it on.
    """

    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID
    user_id: str
    device_id: str | None
    token_expires_at: datetime
    replaces_scan_id: uuid.UUID | None = None
    live_code_id: uuid.UUID | None = None
    day: date | None = None


@event_type
class ScanFoundMember(Event, frozen=True):
    """The person scanning is already a member: no scan counted, no token, no seat."""

    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID
    user_id: str
    live_code_id: uuid.UUID | None = None


@event_type
class ScanRejected(Event, frozen=True):
    """`reason` is the problem code the scan was answered with. For a live code refused
    with `group_full`, `groups_seen` is how many groups it had: the issuer opens the next
    one (auto_create) when that is still all of them."""

    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID | None
    user_id: str
    reason: str
    live_code_id: uuid.UUID | None = None
    groups_seen: int | None = None


@event_type
class JoinRequested(Event, frozen=True):
    """A scan of an `approval` or `real_name` code: a person waits for a decision."""

    request_id: uuid.UUID
    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID
    user_id: str
    mode: str
    real_name: str | None = None
    live_code_id: uuid.UUID | None = None
    day: date | None = None  # counted as a scan, on this local day


@event_type
class JoinRequestApproved(Event, frozen=True):
    request_id: uuid.UUID
    group_id: uuid.UUID
    user_id: str
    decided_by: uuid.UUID | None  # the API key that approved


@event_type
class JoinRequestDeclined(Event, frozen=True):
    request_id: uuid.UUID
    group_id: uuid.UUID
    user_id: str
    decided_by: uuid.UUID | None
    reason: str | None = None


@event_type
class JoinTokenRedeemed(Event, frozen=True):
    """The token's reserved seat is released (and, unless already a member, taken)."""

    scan_id: uuid.UUID
    group_id: uuid.UUID
    user_id: str


@event_type
class JoinTokenExpired(Event, frozen=True):
    """A token was not redeemed within its lifetime: its reserved seat is free again."""

    scan_id: uuid.UUID
    group_id: uuid.UUID
    code_id: uuid.UUID | None


@event_type
class MemberJoined(Event, frozen=True):
    """`verification` is the mode the person passed (`none` for none), through a token
    (`scan_id`) or an approved join request (`request_id`)."""

    group_id: uuid.UUID
    user_id: str
    code_id: uuid.UUID | None
    scan_id: uuid.UUID | None
    verification: str = "none"
    live_code_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None


@event_type
class MemberLeft(Event, frozen=True):
    """A member left (or was removed): the seat is free."""

    group_id: uuid.UUID
    user_id: str
    verification: str = "none"  # how they had joined, so verified-join counts stay right
