"""The redeemer's vocabulary: every scan decision, join and released seat."""

from __future__ import annotations

import uuid
from datetime import datetime

from shared.events.base import Event, event_type


@event_type
class ScanAccepted(Event, frozen=True):
    """A scan passed every check: one scan counted, one token handed out.

    It reserves a seat, unless the same person's unredeemed token for the group was
    replaced (`replaces_scan_id`): then the seat that token held passes to this one.
    """

    scan_id: uuid.UUID
    code_id: uuid.UUID
    group_id: uuid.UUID
    user_id: str
    device_id: str | None
    token_expires_at: datetime
    replaces_scan_id: uuid.UUID | None = None


@event_type
class ScanFoundMember(Event, frozen=True):
    """The person scanning is already a member: no scan counted, no token, no seat."""

    scan_id: uuid.UUID
    code_id: uuid.UUID
    group_id: uuid.UUID
    user_id: str


@event_type
class ScanRejected(Event, frozen=True):
    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID | None
    user_id: str
    reason: str


@event_type
class JoinTokenRedeemed(Event, frozen=True):
    scan_id: uuid.UUID
    group_id: uuid.UUID
    user_id: str


@event_type
class MemberJoined(Event, frozen=True):
    group_id: uuid.UUID
    user_id: str
    code_id: uuid.UUID
    scan_id: uuid.UUID


@event_type
class JoinTokenExpired(Event, frozen=True):
    """A token was not redeemed within its lifetime: its reserved seat is free again."""

    scan_id: uuid.UUID
    group_id: uuid.UUID
    code_id: uuid.UUID
