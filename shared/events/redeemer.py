"""The redeemer's vocabulary: every scan decision, join, join request and released seat.

A scan is its own stream, `scan:{scan_id}`: version 1 is the decision, version 2 what
became of its token (redeemed or expired), version 3 the membership it made. A join
request is `request:{request_id}`. From these events alone every counter the redeemer
keeps (scans, seats, members) can be recomputed.

Schema 2 names people by `person`, a pseudonym, and carries every personal value sealed
with that person's key (shared/events/personal.py): `user` (the user id), `device`,
`display_name`, `real_name`, `ip`, `location` ("lat,lon" or "lat,lon,accuracy_m"). Schema 1
events, from before, are lifted by the upcasters below: their values stay in clear.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from shared.events.base import Event, event_type, upcaster
from shared.events.personal import Sealed, legacy_person


@event_type
class ScanAccepted(Event, frozen=True):
    """A scan passed every check: one scan counted, one token handed out.

    It reserves a seat, unless the same person's unredeemed token for the group was
    replaced (`replaces_scan_id`): then the seat that token held passes to this one.
    `day` is the local date in the group's time zone, the day the daily cap counted it on.
    """

    SCHEMA = 2

    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID
    person: str
    user: Sealed
    token_expires_at: datetime
    device: Sealed | None = None
    display_name: Sealed | None = None
    ip: Sealed | None = None
    location: Sealed | None = None
    replaces_scan_id: uuid.UUID | None = None
    channel: str | None = None  # the code's attribution channel when it was scanned
    live_code_id: uuid.UUID | None = None
    daily_capped: bool = False  # counted against the code's daily cap on `day`
    day: date | None = None


@event_type
class ScanFoundMember(Event, frozen=True):
    """The person scanning is already a member: no scan counted, no token, no seat."""

    SCHEMA = 2

    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID
    person: str
    user: Sealed
    channel: str | None = None  # the code's attribution channel when it was scanned
    live_code_id: uuid.UUID | None = None


@event_type
class ScanRejected(Event, frozen=True):
    """`reason` is the problem code the scan was answered with. For a live code refused
    with `group_full`, `groups_seen` is how many groups it had: the issuer opens the next
    one (auto_create) when that is still all of them."""

    SCHEMA = 2

    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID | None
    person: str
    user: Sealed
    reason: str
    ip: Sealed | None = None
    location: Sealed | None = None
    channel: str | None = None  # the code's attribution channel when it was scanned
    live_code_id: uuid.UUID | None = None
    groups_seen: int | None = None


@event_type
class JoinRequested(Event, frozen=True):
    """A scan of an `approval` or `real_name` code: a person waits for a decision."""

    SCHEMA = 2

    request_id: uuid.UUID
    scan_id: uuid.UUID
    code_id: uuid.UUID | None
    group_id: uuid.UUID
    person: str
    user: Sealed
    mode: str
    real_name: Sealed | None = None
    display_name: Sealed | None = None
    ip: Sealed | None = None
    location: Sealed | None = None
    channel: str | None = None  # the code's attribution channel when it was scanned
    live_code_id: uuid.UUID | None = None
    daily_capped: bool = False  # counted against the code's daily cap on `day`
    day: date | None = None  # counted as a scan, on this local day


@event_type
class JoinRequestApproved(Event, frozen=True):
    SCHEMA = 2

    request_id: uuid.UUID
    group_id: uuid.UUID
    person: str
    user: Sealed
    decided_by: uuid.UUID | None  # the API key that approved


@event_type
class JoinRequestDeclined(Event, frozen=True):
    SCHEMA = 2

    request_id: uuid.UUID
    group_id: uuid.UUID
    person: str
    user: Sealed
    decided_by: uuid.UUID | None
    reason: str | None = None


@event_type
class JoinTokenRedeemed(Event, frozen=True):
    """The token's reserved seat is released (and, unless already a member, taken)."""

    SCHEMA = 2

    scan_id: uuid.UUID
    group_id: uuid.UUID
    person: str
    user: Sealed


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

    SCHEMA = 2

    group_id: uuid.UUID
    person: str
    user: Sealed
    code_id: uuid.UUID | None
    scan_id: uuid.UUID | None
    verification: str = "none"
    live_code_id: uuid.UUID | None = None
    request_id: uuid.UUID | None = None


@event_type
class MemberLeft(Event, frozen=True):
    """A member left (or was removed): the seat is free. `person` is the membership's."""

    SCHEMA = 2

    group_id: uuid.UUID
    person: str
    user: Sealed
    verification: str = "none"  # how they had joined, so verified-join counts stay right


@event_type
class PersonForgotten(Event, frozen=True):
    """A person's data was erased on request (`DELETE /v1/people/{user_id}`, `qunma
    forget`): every key of theirs destroyed, so every value sealed for them is unreadable.
    Their memberships stay (the seats are still taken), under the name `erased:{person}`."""

    person: str
    keys_destroyed: int


@event_type
class PersonalDataExpired(Event, frozen=True):
    """Retention destroyed the person keys of events of `profile` groups up to `through`
    (a UTC day): what was sealed with them is unreadable from now on."""

    profile: str
    through: date
    keys_destroyed: int


# -- schema 1: user ids and the rest in clear ------------------------------------------------


def _lift(fields: dict[str, Any]) -> dict[str, Any]:
    """Schema 1 → 2: a pseudonym for the user id, and every personal value marked clear."""
    lifted = dict(fields)
    user_id = lifted.pop("user_id")
    lifted["person"] = legacy_person(user_id)
    lifted["user"] = {"k": "", "c": user_id}
    if "device_id" in lifted:
        device = lifted.pop("device_id")
        lifted["device"] = None if device is None else {"k": "", "c": device}
    if lifted.get("real_name") is not None:
        lifted["real_name"] = {"k": "", "c": lifted["real_name"]}
    return lifted


for _type in (
    ScanAccepted,
    ScanFoundMember,
    ScanRejected,
    JoinRequested,
    JoinRequestApproved,
    JoinRequestDeclined,
    JoinTokenRedeemed,
    MemberJoined,
    MemberLeft,
):
    upcaster(_type.type_name(), 1)(_lift)
