"""The ordered rules a scan of a code must pass (docs/api.md lists them in this order; the
first that fails is the answer), and what it does once it has passed them.

Everything here is read from one row, the scan's context (application/scanner.py reads
it in one query). What the rules cannot decide alone is left to the caller, in the same
order: a wrong answer is counted under the lockout (application/lockout.py) before it is
compared, and the caps (scans, the day's scans, seats) are taken by the database in the
scan's one call, because only a conditional write holds them exactly under races.
"""

from __future__ import annotations

import ipaddress
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal

from services.redeemer.domain.inputs import ScanInput
from services.redeemer.domain.places import inside_fence, ip_allowed
from shared.refusals import Reason, Refusal
from shared.rows import Row
from shared.rules import code_status, verification
from shared.rules.daily_cap import local_day
from shared.rules.invite_codes import invite_code_matches
from shared.rules.profiles import DECIDED_BY_A_PERSON
from shared.rules.subjects import Network

Question = Literal["invite_code", "phone_last4"]
QUESTIONS: tuple[Question, ...] = ("invite_code", "phone_last4")


@dataclass(frozen=True, kw_only=True)
class CodeContext:
    """A code, its group, and this person's standing in it, as of one read."""

    code_id: uuid.UUID
    group_id: uuid.UUID
    status: str  # the issuer's act: active, revoked or superseded
    not_before: datetime | None
    expires_at: datetime | None
    verification_mode: str
    profile: str
    members: int
    verified_joins: int
    ip_allowlist: Sequence[Network]
    geo_lat: float | None
    geo_lon: float | None
    geo_radius_m: float | None
    bind_device: bool
    invite_code_hash: str | None
    phone_last4: list[str] | None
    timezone: str
    daily_scan_limit: int | None
    channel: str | None
    fallback_url: str | None
    member_since: datetime | None  # this person's membership
    held_scan_id: uuid.UUID | None  # the scan of this person's unredeemed token
    db_now: datetime  # the database's clock when it was read: a token's 15 s start there

    @classmethod
    def of(cls, row: Row) -> CodeContext:
        """From the scan's context row (one column per field)."""
        values = {name: row[name] for name in cls.__dataclass_fields__}
        values["ip_allowlist"] = tuple(ipaddress.ip_network(n) for n in row["ip_allowlist"] or ())
        return cls(**values)

    def status_at(self, now: datetime) -> code_status.Status:
        return code_status.status(
            revoked=self.status == "revoked",
            superseded=self.status == "superseded",
            not_before=self.not_before,
            expires_at=self.expires_at,
            now=now,
        )

    def day(self, now: datetime) -> date:
        """The group's local day: what the daily cap counts scans by."""
        return local_day(now, self.timezone)


@dataclass(frozen=True)
class Admission:
    """A scan that passed every rule: what it does next."""

    then: Literal["member", "request", "token"]
    # the question to check first, under the lockout, before a request or a token
    question: Question | None = None


def decide(code: CodeContext, scan: ScanInput, now: datetime) -> Admission:
    """The rules in order; the first that fails raises its refusal."""
    found = code.status_at(now)
    if found != "active":
        raise code_status.refusal(found, code.not_before, now)
    if code.member_since is not None:
        return Admission("member")
    mode = code.verification_mode
    why = verification.qr_join_refusal(code.profile, mode, code.members, code.verified_joins)
    if why is not None:
        raise Refusal(Reason.QR_JOIN_DISABLED, why)
    if not ip_allowed(scan.ip, code.ip_allowlist):
        raise Refusal(Reason.IP_NOT_ALLOWED, "this code is not open to your network")
    if code.geo_lat is not None and code.geo_lon is not None and code.geo_radius_m is not None:
        where = scan.location
        if where is None:
            raise Refusal(Reason.LOCATION_REQUIRED, "this code needs your location")
        if not inside_fence(
            where.lat, where.lon, where.accuracy_m, code.geo_lat, code.geo_lon, code.geo_radius_m
        ):
            raise Refusal(Reason.OUTSIDE_GEOFENCE, "you are outside the area this code is for")
    if code.bind_device and not scan.device_id:
        raise Refusal(
            Reason.DEVICE_NOT_ALLOWED, "this code binds the join to a device: send device_id"
        )
    if mode in ("invite_code", "phone_last4", "real_name") and not scan.answer(mode):
        raise Refusal(Reason.VERIFICATION_REQUIRED, f"this code asks for {mode}", field=mode)
    if mode == "phone_last4" and code.phone_last4 is None and not scan.vouched:
        # Without a list of digits only the platform can vouch for them (an API call);
        # on the anonymous page any four digits would do.
        raise Refusal(
            Reason.VERIFICATION_UNAVAILABLE,
            "this code's phone digits are checked by the platform: open it in its app",
        )
    question = next((q for q in QUESTIONS if q == mode), None)
    return Admission("request" if mode in DECIDED_BY_A_PERSON else "token", question)


def answer_right(code: CodeContext, scan: ScanInput, invite_secret: bytes) -> bool:
    """Whether the person's answer to the code's question is right."""
    if code.verification_mode == "invite_code":
        return invite_code_matches(
            invite_secret, code.code_id, scan.invite_code or "", code.invite_code_hash
        )
    return verification.phone_matches(scan.phone_last4 or "", code.phone_last4)
