"""Who a code admits without asking a person to decide: the profile's rules for QR joins,
WeChat's rule for large personal groups, and what a person's answer must match.

Invite codes have a module of their own (invite_codes.py); phone digits and the group rules
are here, asked by the issuer when it issues a code and by the redeemer when it decides a
scan, of a code's group or of each group a live code routes to.
"""

from __future__ import annotations

from shared.rules.profiles import DECIDED_BY_A_PERSON, PROFILES

# WeChat's rule for large personal groups: past 100 members, new members come through
# verified codes. Read literally ("no new codes until 3 verified joins") a group could
# never get there; here a code with verification `none` is what waits for the 3.
LARGE_GROUP = 100
VERIFIED_JOINS_NEEDED = 3


def large_group_rule_applies(profile: str, mode: str) -> bool:
    """Whether the large-group rule can hold back codes of `mode` in a group of `profile`."""
    return profile == "personal" and mode == "none"


def large_group_waits(profile: str, mode: str, members: int, verified_joins: int) -> bool:
    """Whether a personal group of more than 100 members must wait for verified joins
    before it admits through a code of `mode`."""
    return (
        large_group_rule_applies(profile, mode)
        and members > LARGE_GROUP
        and verified_joins < VERIFIED_JOINS_NEEDED
    )


def qr_join_refusal(profile: str, mode: str, members: int, verified_joins: int) -> str | None:
    """Why a group does not admit through a code of verification `mode` (a live code's is
    `none`), or None."""
    rules = PROFILES.get(profile)
    if rules is not None and not rules.qr_join and mode not in DECIDED_BY_A_PERSON:
        return f"a {profile} group admits only by approval with real-name verification"
    if large_group_waits(profile, mode, members, verified_joins):
        return (
            f"a personal group of more than {LARGE_GROUP} members admits through an "
            f"unverified code only once {VERIFIED_JOINS_NEEDED} members joined through a "
            "verified one"
        )
    return None


def phone_matches(answer: str, allowlist: list[str] | None) -> bool:
    """Without a list the platform vouches for the digits; with one they must be on it."""
    return allowlist is None or answer in allowlist


def verified(mode: str) -> bool:
    """Whether a member who joined through a code of `mode` counts as a verified join (what
    the large-group rule waits for)."""
    return mode != "none"
