"""The pure parts of the scan decision: where a person is, what they answered, what day it is."""

from __future__ import annotations

import ipaddress
import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

EARTH_RADIUS_M = 6_371_008.8
LARGE_GROUP, VERIFIED_JOINS_NEEDED = 100, 3  # WeChat's rule for large personal groups
# A phone's reported accuracy widens the fence by at most this much: a claimed accuracy
# of 10 km must not let anyone in.
MAX_ACCURACY_SLACK_M = 50.0


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """Great-circle distance (haversine) in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(a))


def inside_fence(
    lat: float,
    lon: float,
    accuracy_m: float | None,
    fence_lat: float,
    fence_lon: float,
    radius_m: float,
) -> bool:
    slack = min(max(accuracy_m or 0.0, 0.0), MAX_ACCURACY_SLACK_M)
    return distance_m(lat, lon, fence_lat, fence_lon) <= radius_m + slack


def qr_join_refusal(profile: str, mode: str, members: int, verified_joins: int) -> str | None:
    """Why a group does not admit through a code of verification `mode` (a live code's is
    `none`), or None. Asked of a code's group and of every group a live code routes to."""
    if profile == "gov" and mode != "real_name":
        return "this group admits only by approval with real-name verification"
    if (
        profile == "personal"
        and mode == "none"
        and members > LARGE_GROUP
        and verified_joins < VERIFIED_JOINS_NEEDED
    ):
        return (
            f"a personal group of more than {LARGE_GROUP} members admits through an "
            f"unverified code only once {VERIFIED_JOINS_NEEDED} members joined through a "
            "verified one"
        )
    return None


def ip_allowed(
    ip: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
    allowlist: list[ipaddress.IPv4Network | ipaddress.IPv6Network],
) -> bool:
    if not allowlist:
        return True
    return ip is not None and any(ip.version == net.version and ip in net for net in allowlist)


def phone_matches(answer: str, allowlist: list[str] | None) -> bool:
    """Without a list the platform vouches for the digits; with one they must be on it."""
    return allowlist is None or answer in allowlist


def local_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def seconds_to_local_midnight(now: datetime, timezone: str) -> int:
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
    return max(1, math.ceil((midnight - local).total_seconds()))
