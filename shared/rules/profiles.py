"""Profiles: policy presets taken from WeChat, WeCom and QQ practice.

A group's profile sets the defaults of its codes and the bounds an integrator may not cross
(the issuer refuses an override outside a bound as `outside_profile`, naming it), and
whether a scan may admit anyone directly (`qr_join`; the redeemer asks it of every group it
admits to).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from shared.refusals import Reason, Refusal

WEEK = timedelta(days=7)
MIN_TTL = timedelta(seconds=60)
VERIFICATION_MODES = ("none", "invite_code", "phone_last4", "approval", "real_name")
# Modes where a person decides: a group that admits no one by QR (`qr_join` false) admits
# through these only.
DECIDED_BY_A_PERSON = frozenset({"approval", "real_name"})


@dataclass(frozen=True, kw_only=True)
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

    def outside(self, field: str, rule: str) -> Refusal:
        return Refusal(
            Reason.OUTSIDE_PROFILE,
            f"{field} is outside the {self.name!r} profile: {rule}",
            profile=self.name,
            field=field,
        )


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile(  # a WeChat group of a person
            name="personal",
            max_members=200,
            ttl_default=WEEK,
            ttl_min=WEEK,
            ttl_max=WEEK,
            permanent_allowed=False,
            extendable=False,
            max_scans_default=100,
            max_scans_bound=100,
            daily_default=200,
            daily_bound=200,
            qr_join=True,
            modes=frozenset(VERIFICATION_MODES),
            default_mode="none",
            rotate_default=True,
        ),
        Profile(  # a WeCom group with customers in it
            name="wecom_external",
            max_members=200,
            ttl_default=WEEK,
            ttl_min=WEEK,
            ttl_max=WEEK,
            permanent_allowed=False,
            extendable=False,
            max_scans_default=100,
            max_scans_bound=100,
            daily_default=None,
            daily_bound=None,
            qr_join=True,
            modes=frozenset(VERIFICATION_MODES),
            default_mode="none",
            rotate_default=False,
        ),
        Profile(  # a WeCom group of one enterprise's staff
            name="wecom_internal",
            max_members=500,
            ttl_default=WEEK,
            ttl_min=MIN_TTL,
            ttl_max=None,
            permanent_allowed=True,
            extendable=True,
            max_scans_default=None,
            max_scans_bound=None,
            daily_default=None,
            daily_bound=None,
            qr_join=True,
            modes=frozenset(VERIFICATION_MODES),
            default_mode="none",
            rotate_default=False,
        ),
        Profile(  # a QQ group
            name="qq",
            max_members=2000,
            ttl_default=None,
            ttl_min=MIN_TTL,
            ttl_max=None,
            permanent_allowed=True,
            extendable=True,
            max_scans_default=None,
            max_scans_bound=None,
            daily_default=None,
            daily_bound=None,
            qr_join=True,
            modes=frozenset(VERIFICATION_MODES),
            default_mode="none",
            rotate_default=False,
        ),
        Profile(  # a government service group: approval with a real name only
            name="gov",
            max_members=500,
            ttl_default=WEEK,
            ttl_min=MIN_TTL,
            ttl_max=WEEK,
            permanent_allowed=False,
            extendable=False,
            max_scans_default=100,
            max_scans_bound=100,
            daily_default=200,
            daily_bound=200,
            qr_join=False,
            modes=frozenset({"real_name"}),
            default_mode="real_name",
            rotate_default=False,
        ),
    )
}


def profile(name: str) -> Profile:
    found = PROFILES.get(name)
    if found is None:
        raise Refusal(
            Reason.INVALID_REQUEST, f"unknown profile {name!r}; one of {', '.join(PROFILES)}"
        )
    return found
