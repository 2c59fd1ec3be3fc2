"""Profiles: policy presets taken from WeChat, WeCom and QQ practice.

A group's profile sets the defaults of its codes and the bounds an integrator may not cross.
An override outside a bound is refused with a 422 that names the bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shared.http.problems import Problem

WEEK = timedelta(days=7)
MIN_TTL = timedelta(seconds=60)
VERIFICATION_MODES = ("none", "invite_code", "phone_last4", "approval", "real_name")
VERIFIED_MODES = frozenset(VERIFICATION_MODES) - {"none"}


@dataclass(frozen=True)
class Profile:
    name: str
    max_members: int  # the default and the upper bound
    ttl_default: timedelta | None  # None: permanent
    ttl_min: timedelta
    ttl_max: timedelta | None  # None: no upper bound
    permanent_allowed: bool
    extendable: bool
    max_scans_default: int | None  # None: no cap
    max_scans_bound: int | None
    daily_default: int | None
    daily_bound: int | None
    qr_join: bool  # False: a scan never admits directly, only through approval
    modes: frozenset[str]
    default_mode: str
    rotate_default: bool

    @property
    def fixed_lifetime(self) -> bool:
        return self.ttl_min == self.ttl_max and not self.permanent_allowed

    def ttl(self, requested: int | None, given: bool) -> timedelta | None:
        """The lifetime of a new code: the default when not given, else checked."""
        if not given:
            return self.ttl_default
        if requested is None:
            if not self.permanent_allowed:
                raise self.outside("ttl_seconds", "codes cannot be permanent")
            return None
        ttl = timedelta(seconds=requested)
        if self.fixed_lifetime and ttl != self.ttl_min:
            raise self.outside(
                "ttl_seconds", f"the lifetime is fixed at {int(self.ttl_min.total_seconds())} s"
            )
        if ttl < self.ttl_min:
            raise self.outside("ttl_seconds", f"at least {int(self.ttl_min.total_seconds())} s")
        if self.ttl_max is not None and ttl > self.ttl_max:
            raise self.outside("ttl_seconds", f"at most {int(self.ttl_max.total_seconds())} s")
        return ttl

    def max_scans(self, requested: int | None, given: bool) -> int | None:
        return self._cap(
            "max_scans", requested, given, self.max_scans_default, self.max_scans_bound
        )

    def daily_scan_limit(self, requested: int | None, given: bool) -> int | None:
        return self._cap("daily_scan_limit", requested, given, self.daily_default, self.daily_bound)

    def members(self, requested: int | None) -> int:
        if requested is None:
            return self.max_members
        if requested > self.max_members:
            raise self.outside("max_members", f"at most {self.max_members}")
        return requested

    def mode(self, requested: str | None) -> str:
        mode = requested or self.default_mode
        if mode not in self.modes:
            raise self.outside(
                "verification.mode",
                "allowed: " + ", ".join(m for m in VERIFICATION_MODES if m in self.modes),
            )
        return mode

    def _cap(
        self, field: str, requested: int | None, given: bool, default: int | None, bound: int | None
    ) -> int | None:
        if not given:
            return default
        if bound is not None and (requested is None or requested > bound):
            raise self.outside(field, f"at most {bound}")
        return requested

    def outside(self, field: str, rule: str) -> Problem:
        return Problem(
            "outside_profile",
            f"{field} is outside the {self.name!r} profile: {rule}",
            profile=self.name,
            field=field,
        )


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(
            "personal",
            200,
            WEEK,
            WEEK,
            WEEK,
            False,
            False,
            100,
            100,
            200,
            200,
            True,
            frozenset(VERIFICATION_MODES),
            "none",
            True,
        ),
        Profile(
            "wecom_external",
            200,
            WEEK,
            WEEK,
            WEEK,
            False,
            False,
            100,
            100,
            None,
            None,
            True,
            frozenset(VERIFICATION_MODES),
            "none",
            False,
        ),
        Profile(
            "wecom_internal",
            500,
            WEEK,
            MIN_TTL,
            None,
            True,
            True,
            None,
            None,
            None,
            None,
            True,
            frozenset(VERIFICATION_MODES),
            "none",
            False,
        ),
        Profile(
            "qq",
            2000,
            None,
            MIN_TTL,
            None,
            True,
            True,
            None,
            None,
            None,
            None,
            True,
            frozenset(VERIFICATION_MODES),
            "none",
            False,
        ),
        Profile(
            "gov",
            500,
            WEEK,
            MIN_TTL,
            WEEK,
            False,
            False,
            100,
            100,
            200,
            200,
            False,
            frozenset({"real_name"}),
            "real_name",
            False,
        ),
    )
}
DEFAULT_PROFILE = "personal"

# WeChat's rule for large personal groups: past 100 members, new codes need members who
# joined through a verified mode. Here: a personal group of more than 100 members accepts
# codes with verification `none` only once 3 members have joined through a verified mode
# (codes with a verified mode are always accepted, so the group can reach the 3).
LARGE_GROUP = 100
VERIFIED_JOINS_NEEDED = 3


def profile(name: str) -> Profile:
    found = PROFILES.get(name)
    if found is None:
        raise Problem("invalid_request", f"unknown profile {name!r}; one of {', '.join(PROFILES)}")
    return found
