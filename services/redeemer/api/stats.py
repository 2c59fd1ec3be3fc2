"""Analytics: /v1/codes/{code_id}/stats, /v1/live-codes/{id}/stats, /v1/groups/{id}/stats"""

from __future__ import annotations

import uuid

from aiohttp import web

from services.redeemer import stats
from services.redeemer.api.registry import api
from services.redeemer.api.schemas import StatsOut, StatsQuery
from services.redeemer.context import CLOCK, POOL
from shared.http.json import json_response
from shared.http.paths import path_uuid
from shared.http.problems import Problem

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
            raise Problem("not_found", f"no {what} {subject_id}")
        return json_response(
            await stats.stats(conn, subject, subject_id, timezone, days, request.app[CLOCK]())
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
