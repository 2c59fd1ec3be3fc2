"""Analytics: /v1/codes/{code_id}/stats, /v1/live-codes/{id}/stats, /v1/groups/{id}/stats

A read query over the scan facts every decision writes, in the group's time zone: no rule
decides anything here, so it is answered from the API layer directly.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from services.redeemer.api.registry import api
from services.redeemer.api.schemas import (
    Bucket,
    ChannelTally,
    GroupTally,
    StatsOut,
    StatsQuery,
    Totals,
)
from services.redeemer.context import CLOCK, POOL
from shared.dbtypes import Conn
from shared.http.json import json_response
from shared.http.paths import path_uuid
from shared.refusals import Reason, Refusal
from shared.rules.daily_cap import local_day

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
    since = local_day(now, timezone) - timedelta(days=days - 1)
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


_SUBJECT = {
    "code": (
        "code_id",
        "code",
        "SELECT g.timezone FROM codes c JOIN groups g USING (group_id) "
        "WHERE c.code_id = $1 AND c.tenant_id = $2",
    ),
    "live": (
        "live_code_id",
        "live code",
        "SELECT coalesce((SELECT g.timezone FROM groups g WHERE g.group_id = l.group_ids[1]),"
        " 'Asia/Shanghai') FROM live_codes l WHERE l.live_code_id = $1 AND l.tenant_id = $2",
    ),
    "group": (
        "group_id",
        "group",
        "SELECT timezone FROM groups WHERE group_id = $1 AND tenant_id = $2",
    ),
}


async def _stats(
    request: web.Request, tenant_id: uuid.UUID, subject: str, days: int
) -> web.Response:
    name, what, timezone_sql = _SUBJECT[subject]
    subject_id = path_uuid(request, name, what)
    async with request.app[POOL].acquire() as conn:
        timezone = await conn.fetchval(timezone_sql, subject_id, tenant_id)
        if timezone is None:
            raise Refusal(Reason.NOT_FOUND, f"no {what} {subject_id}")
        return json_response(
            await stats(conn, subject, subject_id, timezone, days, request.app[CLOCK]())
        )


@api.route(
    "GET",
    "/v1/codes/{code_id}/stats",
    summary="A code's scans and joins",
    scope="issue",
    tags=["analytics"],
    query=StatsQuery,
    responses={200: StatsOut},
    errors=["not_found"],
)
async def code_stats(request: web.Request, tenant_id: uuid.UUID, query: StatsQuery) -> web.Response:
    """Scans accepted and rejected by reason, joins and conversion, by day and by hour in
    the group's time zone, over the last `days` days."""
    return await _stats(request, tenant_id, "code", query.days)


@api.route(
    "GET",
    "/v1/live-codes/{live_code_id}/stats",
    summary="A live code's scans and joins",
    scope="issue",
    tags=["analytics"],
    query=StatsQuery,
    responses={200: StatsOut},
    errors=["not_found"],
)
async def live_code_stats(
    request: web.Request, tenant_id: uuid.UUID, query: StatsQuery
) -> web.Response:
    """As for a code, and per group (`by_group`)."""
    return await _stats(request, tenant_id, "live", query.days)


@api.route(
    "GET",
    "/v1/groups/{group_id}/stats",
    summary="A group's scans and joins",
    scope="issue",
    tags=["analytics"],
    query=StatsQuery,
    responses={200: StatsOut},
    errors=["not_found"],
)
async def group_stats(
    request: web.Request, tenant_id: uuid.UUID, query: StatsQuery
) -> web.Response:
    """Across all the group's codes, with `by_channel` for attribution."""
    return await _stats(request, tenant_id, "group", query.days)
