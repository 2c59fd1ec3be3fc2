"""The daily scan cap: a code's scans are counted per day in its group's time zone.

The count itself is one conditional statement in `qunma_count_scan`
(services/redeemer/sql/count_scan.sql); here is what day it is there, and how long until the
next one, for `Retry-After`.
"""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo


def local_day(now: datetime, timezone: str) -> date:
    return now.astimezone(ZoneInfo(timezone)).date()


def seconds_to_local_midnight(now: datetime, timezone: str) -> int:
    zone = ZoneInfo(timezone)
    local = now.astimezone(zone)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), zone)
    return max(1, math.ceil((midnight - local).total_seconds()))
