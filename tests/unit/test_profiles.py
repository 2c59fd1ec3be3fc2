"""Profiles (shared/rules/profiles.py) and the verification rules asked of them
(shared/rules/verification.py): defaults, bounds and who admits by QR, per profile."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.refusals import Reason, Refusal
from shared.rules.profiles import PROFILES, VERIFICATION_MODES, profile
from shared.rules.verification import (
    LARGE_GROUP,
    large_group_waits,
    qr_join_refusal,
    verified,
)

WEEK = timedelta(days=7)


@pytest.mark.parametrize(
    ("name", "members", "ttl", "scans", "daily", "mode"),
    [
        ("personal", 200, WEEK, 100, 200, "none"),
        ("wecom_external", 200, WEEK, 100, None, "none"),
        ("wecom_internal", 500, WEEK, None, None, "none"),
        ("qq", 2000, None, None, None, "none"),
        ("gov", 500, WEEK, 100, 200, "real_name"),
    ],
)
def test_defaults_of_each_profile(
    name: str,
    members: int,
    ttl: timedelta | None,
    scans: int | None,
    daily: int | None,
    mode: str,
) -> None:
    rules = profile(name)
    assert rules.members(None) == members
    assert rules.ttl(None, given=False) == ttl
    assert rules.max_scans(None, given=False) == scans
    assert rules.daily_scan_limit(None, given=False) == daily
    assert rules.mode(None) == mode


# (profile, what is asked, the field named in the refusal)
OUTSIDE = [
    ("personal", lambda p: p.ttl(3600, given=True), "ttl_seconds"),  # fixed at 7 days
    ("personal", lambda p: p.ttl(None, given=True), "ttl_seconds"),  # not permanent
    ("personal", lambda p: p.max_scans(101, given=True), "max_scans"),
    ("personal", lambda p: p.max_scans(None, given=True), "max_scans"),  # uncapped
    ("personal", lambda p: p.daily_scan_limit(201, given=True), "daily_scan_limit"),
    ("personal", lambda p: p.members(201), "max_members"),
    ("wecom_internal", lambda p: p.ttl(59, given=True), "ttl_seconds"),
    ("gov", lambda p: p.ttl(8 * 86400, given=True), "ttl_seconds"),
    ("gov", lambda p: p.mode("approval"), "verification.mode"),
    ("gov", lambda p: p.mode("none"), "verification.mode"),
    ("qq", lambda p: p.members(2001), "max_members"),
]


@pytest.mark.parametrize(("name", "ask", "field"), OUTSIDE)
def test_a_value_outside_a_bound_is_refused_naming_it(name: str, ask: object, field: str) -> None:
    with pytest.raises(Refusal) as refused:
        ask(profile(name))  # type: ignore[operator]
    assert refused.value.reason is Reason.OUTSIDE_PROFILE
    assert refused.value.extra == {"profile": name, "field": field}


@pytest.mark.parametrize(
    ("name", "ask", "value"),
    [
        ("personal", lambda p: p.ttl(7 * 86400, given=True), WEEK),
        ("wecom_internal", lambda p: p.ttl(None, given=True), None),
        ("qq", lambda p: p.max_scans(None, given=True), None),
        ("gov", lambda p: p.mode("real_name"), "real_name"),
        ("wecom_external", lambda p: p.daily_scan_limit(5, given=True), 5),
    ],
)
def test_a_value_inside_the_bounds_is_taken(name: str, ask: object, value: object) -> None:
    assert ask(profile(name)) == value  # type: ignore[operator]


def test_an_unknown_profile_is_an_invalid_request() -> None:
    with pytest.raises(Refusal) as refused:
        profile("wechat")
    assert refused.value.reason is Reason.INVALID_REQUEST


def test_every_profile_offers_its_default_mode() -> None:
    for rules in PROFILES.values():
        assert rules.default_mode in rules.modes <= set(VERIFICATION_MODES)


# (profile, mode, members, verified joins, admits through a QR scan)
QR_JOINS = [
    ("gov", "real_name", 0, 0, True),
    ("gov", "none", 0, 0, False),
    ("gov", "invite_code", 0, 0, False),
    ("personal", "none", LARGE_GROUP, 0, True),
    ("personal", "none", LARGE_GROUP + 1, 2, False),
    ("personal", "none", LARGE_GROUP + 1, 3, True),
    ("personal", "invite_code", LARGE_GROUP + 50, 0, True),
    ("qq", "none", 1500, 0, True),
]


@pytest.mark.parametrize(("name", "mode", "members", "joins", "admits"), QR_JOINS)
def test_who_admits_through_a_qr_scan(
    name: str, mode: str, members: int, joins: int, admits: bool
) -> None:
    assert (qr_join_refusal(name, mode, members, joins) is None) is admits
    if name == "personal":
        assert large_group_waits(name, mode, members, joins) is not admits


@pytest.mark.parametrize(("mode", "counts"), [(m, m != "none") for m in VERIFICATION_MODES])
def test_a_join_counts_as_verified_unless_its_code_asked_nothing(mode: str, counts: bool) -> None:
    assert verified(mode) is counts
