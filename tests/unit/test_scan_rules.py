"""The redeemer's admission rules (services/redeemer/domain/admission.py): one row per
refusal, in the documented order, and what a scan that passes does next."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.redeemer.domain.admission import Admission, CodeContext, answer_right, decide
from services.redeemer.domain.inputs import Location, ScanInput
from shared.refusals import Reason, Refusal
from shared.rules.invite_codes import invite_code_hash

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
SECRET = b"s" * 32
CODE_ID = uuid.UUID(int=1)


def code(**changes: Any) -> CodeContext:
    base = CodeContext(
        code_id=CODE_ID,
        group_id=uuid.UUID(int=2),
        status="active",
        not_before=None,
        expires_at=NOW + timedelta(days=1),
        verification_mode="none",
        profile="qq",
        members=10,
        verified_joins=0,
        ip_allowlist=(),
        geo_lat=None,
        geo_lon=None,
        geo_radius_m=None,
        bind_device=False,
        invite_code_hash=None,
        phone_last4=None,
        timezone="Asia/Shanghai",
        daily_scan_limit=None,
        channel=None,
        fallback_url=None,
        member_since=None,
        held_scan_id=None,
        db_now=NOW,
    )
    return replace(base, **changes)


def scan(**changes: Any) -> ScanInput:
    return replace(ScanInput(payload="p", user_id="u"), **changes)


FENCE = {"geo_lat": 31.2304, "geo_lon": 121.4737, "geo_radius_m": 500.0}
INSIDE = Location(31.2310, 121.4740, 10.0)
OUTSIDE = Location(31.3, 121.6, 10.0)  # ~14 km away

# (why, the code, the scan, the refusal)
REFUSALS = [
    ("revoked", code(status="revoked"), scan(), Reason.CODE_REVOKED),
    ("superseded", code(status="superseded"), scan(), Reason.CODE_SUPERSEDED),
    ("expired", code(expires_at=NOW), scan(), Reason.CODE_EXPIRED),
    ("not yet valid", code(not_before=NOW + timedelta(hours=1)), scan(), Reason.CODE_NOT_ACTIVE),
    # an owner's act speaks before time: revoked and expired is revoked
    ("revoked and expired", code(status="revoked", expires_at=NOW), scan(), Reason.CODE_REVOKED),
    (
        "expired before it began",
        code(not_before=NOW + timedelta(hours=1), expires_at=NOW - timedelta(hours=1)),
        scan(),
        Reason.CODE_EXPIRED,
    ),
    ("gov admits by approval only", code(profile="gov"), scan(), Reason.QR_JOIN_DISABLED),
    (
        "a large personal group waits for verified joins",
        code(profile="personal", members=101, verified_joins=2),
        scan(),
        Reason.QR_JOIN_DISABLED,
    ),
    (
        "address outside the allowlist",
        code(ip_allowlist=(ipaddress.ip_network("10.0.0.0/8"),)),
        scan(ip=ipaddress.ip_address("192.0.2.1")),
        Reason.IP_NOT_ALLOWED,
    ),
    (
        "no address against an allowlist",
        code(ip_allowlist=(ipaddress.ip_network("10.0.0.0/8"),)),
        scan(),
        Reason.IP_NOT_ALLOWED,
    ),
    (
        "an IPv6 address against an IPv4 list",
        code(ip_allowlist=(ipaddress.ip_network("10.0.0.0/8"),)),
        scan(ip=ipaddress.ip_address("2001:db8::1")),
        Reason.IP_NOT_ALLOWED,
    ),
    ("no location for a fence", code(**FENCE), scan(), Reason.LOCATION_REQUIRED),
    ("outside the fence", code(**FENCE), scan(location=OUTSIDE), Reason.OUTSIDE_GEOFENCE),
    (
        "a claimed accuracy of 10 km does not widen the fence",
        code(**FENCE),
        scan(location=Location(31.3, 121.6, 10_000.0)),
        Reason.OUTSIDE_GEOFENCE,
    ),
    ("device binding without a device", code(bind_device=True), scan(), Reason.DEVICE_NOT_ALLOWED),
    (
        "no invite code",
        code(verification_mode="invite_code"),
        scan(),
        Reason.VERIFICATION_REQUIRED,
    ),
    (
        "no phone digits",
        code(verification_mode="phone_last4"),
        scan(),
        Reason.VERIFICATION_REQUIRED,
    ),
    ("no real name", code(verification_mode="real_name"), scan(), Reason.VERIFICATION_REQUIRED),
    (
        "phone digits without a list, on the anonymous page",
        code(verification_mode="phone_last4"),
        scan(phone_last4="1234", vouched=False),
        Reason.VERIFICATION_UNAVAILABLE,
    ),
    # the order: a revoked code is revoked whatever else is wrong with the scan
    (
        "revoked comes before every scan rule",
        code(status="revoked", bind_device=True, **FENCE),
        scan(),
        Reason.CODE_REVOKED,
    ),
    (
        "the network comes before the location",
        code(ip_allowlist=(ipaddress.ip_network("10.0.0.0/8"),), **FENCE),
        scan(ip=ipaddress.ip_address("192.0.2.1")),
        Reason.IP_NOT_ALLOWED,
    ),
]


@pytest.mark.parametrize(
    ("the_code", "the_scan", "reason"),
    [pytest.param(c, s, r, id=why) for why, c, s, r in REFUSALS],
)
def test_each_rule_refuses_with_its_reason(
    the_code: CodeContext, the_scan: ScanInput, reason: Reason
) -> None:
    with pytest.raises(Refusal) as refused:
        decide(the_code, the_scan, NOW)
    assert refused.value.reason is reason


def test_every_scan_refusal_has_a_row() -> None:
    """A reason decide() can give without a row above would be an untested rule."""
    decided_here = {
        Reason.CODE_REVOKED,
        Reason.CODE_SUPERSEDED,
        Reason.CODE_EXPIRED,
        Reason.CODE_NOT_ACTIVE,
        Reason.QR_JOIN_DISABLED,
        Reason.IP_NOT_ALLOWED,
        Reason.LOCATION_REQUIRED,
        Reason.OUTSIDE_GEOFENCE,
        Reason.DEVICE_NOT_ALLOWED,
        Reason.VERIFICATION_REQUIRED,
        Reason.VERIFICATION_UNAVAILABLE,
    }
    assert {r for *_, r in REFUSALS} == decided_here


# (why, the code, the scan, what it does next)
PASSES = [
    ("a plain code", code(), scan(), Admission("token")),
    ("a member already", code(member_since=NOW, bind_device=True), scan(), Admission("member")),
    (
        "an invite code is checked first",
        code(verification_mode="invite_code"),
        scan(invite_code="ABCD"),
        Admission("token", "invite_code"),
    ),
    (
        "phone digits the platform vouches for",
        code(verification_mode="phone_last4"),
        scan(phone_last4="1234"),
        Admission("token", "phone_last4"),
    ),
    (
        "approval waits for a person",
        code(verification_mode="approval"),
        scan(),
        Admission("request"),
    ),
    (
        "real name waits for a person",
        code(verification_mode="real_name"),
        scan(real_name="张三"),
        Admission("request"),
    ),
    (
        "gov through real name",
        code(profile="gov", verification_mode="real_name"),
        scan(real_name="张三"),
        Admission("request"),
    ),
    (
        "a large personal group through a verified code",
        code(profile="personal", members=150, verification_mode="invite_code"),
        scan(invite_code="ABCD"),
        Admission("token", "invite_code"),
    ),
    (
        "a large personal group with 3 verified joins",
        code(profile="personal", members=150, verified_joins=3),
        scan(),
        Admission("token"),
    ),
    ("inside the fence", code(**FENCE), scan(location=INSIDE), Admission("token")),
    (
        "inside the allowlist",
        code(ip_allowlist=(ipaddress.ip_network("2001:db8::/32"),)),
        scan(ip=ipaddress.ip_address("2001:db8::5")),
        Admission("token"),
    ),
    ("the moment it opens", code(not_before=NOW), scan(), Admission("token")),
]


@pytest.mark.parametrize(
    ("the_code", "the_scan", "admission"),
    [pytest.param(c, s, a, id=why) for why, c, s, a in PASSES],
)
def test_a_scan_that_passes_says_what_comes_next(
    the_code: CodeContext, the_scan: ScanInput, admission: Admission
) -> None:
    assert decide(the_code, the_scan, NOW) == admission


def test_a_scheduled_code_says_when_it_opens() -> None:
    opens = NOW + timedelta(minutes=5)
    with pytest.raises(Refusal) as refused:
        decide(code(not_before=opens), scan(), NOW)
    assert refused.value.retry_after == 301
    assert refused.value.extra["active_from"] == opens.isoformat()


@pytest.mark.parametrize(
    ("mode", "expected", "answer", "right"),
    [
        ("invite_code", invite_code_hash(SECRET, CODE_ID, "K7P3QX2M"), "k7p3qx2m ", True),
        ("invite_code", invite_code_hash(SECRET, CODE_ID, "K7P3QX2M"), "K7P3QX2N", False),
        ("invite_code", None, "K7P3QX2M", False),
        ("phone_last4", ["1234", "5678"], "5678", True),
        ("phone_last4", ["1234"], "0000", False),
        ("phone_last4", None, "0000", True),  # no list: the platform vouches
    ],
)
def test_answers_are_compared_as_the_code_asks(
    mode: str, expected: Any, answer: str, right: bool
) -> None:
    if mode == "invite_code":
        the_code = code(verification_mode=mode, invite_code_hash=expected)
        the_scan = scan(invite_code=answer)
    else:
        the_code = code(verification_mode=mode, phone_last4=expected)
        the_scan = scan(phone_last4=answer)
    assert answer_right(the_code, the_scan, SECRET) is right


def test_a_context_row_becomes_a_context() -> None:
    row = {name: getattr(code(), name) for name in CodeContext.__dataclass_fields__}
    row["ip_allowlist"] = ["10.0.0.0/8"]
    context = CodeContext.of(row)
    assert context.ip_allowlist == (ipaddress.ip_network("10.0.0.0/8"),)
    assert context.day(datetime(2026, 12, 2, 17, 0, tzinfo=UTC)).isoformat() == "2026-12-03"
