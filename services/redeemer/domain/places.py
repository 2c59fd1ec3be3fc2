"""Where a scan comes from: a code's IP allowlist and its geo-fence."""

from __future__ import annotations

import math
from collections.abc import Sequence

from shared.rules.subjects import IPAddress, Network

EARTH_RADIUS_M = 6_371_008.8
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


def ip_allowed(ip: IPAddress | None, allowlist: Sequence[Network]) -> bool:
    if not allowlist:
        return True
    return ip is not None and any(ip.version == net.version and ip in net for net in allowlist)
