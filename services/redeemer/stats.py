"""Analytics from the scan facts written with every decision, in the group's time zone."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from services.redeemer import checks
from services.redeemer.api.schemas import (
    Bucket,
    ChannelTally,
    GroupTally,
    StatsOut,
    Totals,
)
from shared.dbtypes import Conn

SUBJECTS = {"code": "code_id", "live": "live_code_id", "group": "group_id"}

_COUNTS = """
count(*) FILTER (WHERE outcome = 'accepted') AS accepted,
count(*) FILTER (WHERE outcome = 'rejected') AS rejected,
count(*) FILTER (WHERE outcome = 'member') AS members,
count(*) FILTER (WHERE outcome = 'requested') AS requested,
count(joined_at) AS joins
"""


def facts_of(column: str) -> str:
    """The facts of one code, live code or group ($1) since an instant ($2)."""
    return f"{column} = $1 AND at >= $2"


async def stats(
    conn: Conn, subject: str, subject_id: object, timezone: str, days: int, now: datetime
) -> StatsOut:
    column = SUBJECTS[subject]
    since = checks.local_day(now, timezone) - timedelta(days=days - 1)
    # A bound on `at` itself (the local day's start, in UTC), so the index on (subject, at)
    # finds the rows, rather than a time-zone expression evaluated on every fact.
    start = datetime.combine(since, time.min, ZoneInfo(timezone)).astimezone(UTC)
    where = facts_of(column)
    args = (subject_id, start)
    zoned = (subject_id, start, timezone)  # $3: the zone the buckets are cut in
    total = await conn.fetchrow(f"SELECT {_COUNTS} FROM scan_facts WHERE {where}", *args)
    assert total is not None
    reasons = await conn.fetch(
        f"SELECT reason, count(*) AS n FROM scan_facts WHERE {where} AND outcome = 'rejected' "
        "GROUP BY reason ORDER BY n DESC, reason",
        *args,
    )
    by_day = await conn.fetch(
        f"SELECT to_char((at AT TIME ZONE $3)::date, 'YYYY-MM-DD') AS start, {_COUNTS} "
        f"FROM scan_facts WHERE {where} GROUP BY 1 ORDER BY 1",
        *zoned,
    )
    by_hour = await conn.fetch(
        "SELECT to_char(date_trunc('hour', at AT TIME ZONE $3), 'YYYY-MM-DD\"T\"HH24:00') "
        f"AS start, {_COUNTS} FROM scan_facts WHERE {where} GROUP BY 1 ORDER BY 1",
        *zoned,
    )
    by_channel = await conn.fetch(
        f"SELECT channel, {_COUNTS} FROM scan_facts WHERE {where} GROUP BY channel "
        "ORDER BY channel NULLS FIRST",
        *args,
    )
    by_group = await conn.fetch(
        f"SELECT group_id, {_COUNTS} FROM scan_facts WHERE {where} AND group_id IS NOT NULL "
        "GROUP BY group_id ORDER BY group_id",
        *args,
    )
    accepted = total["accepted"]
    return StatsOut(
        timezone=timezone,
        since=since,
        totals=Totals(
            scans=accepted + total["rejected"] + total["members"] + total["requested"],
            accepted=accepted,
            rejected=total["rejected"],
            rejected_by_reason={r["reason"]: r["n"] for r in reasons},
            already_members=total["members"],
            join_requests=total["requested"],
            joins=total["joins"],
            conversion=round(total["joins"] / accepted, 4) if accepted else None,
        ),
        by_day=[
            Bucket(
                start=r["start"], accepted=r["accepted"], rejected=r["rejected"], joins=r["joins"]
            )
            for r in by_day
        ],
        by_hour=[
            Bucket(
                start=r["start"], accepted=r["accepted"], rejected=r["rejected"], joins=r["joins"]
            )
            for r in by_hour
        ],
        by_channel=[
            ChannelTally(
                channel=r["channel"],
                accepted=r["accepted"],
                rejected=r["rejected"],
                joins=r["joins"],
            )
            for r in by_channel
        ],
        by_group=[
            GroupTally(group_id=r["group_id"], accepted=r["accepted"], joins=r["joins"])
            for r in by_group
        ],
    )
