"""GET /v1/groups/{group_id}/members, oldest first, with an opaque cursor."""

from __future__ import annotations

import base64
import binascii
from datetime import datetime

import msgspec
from aiohttp import web

from services.redeemer.api.schemas import MemberOut, MembersPage
from services.redeemer.context import POOL
from shared.http.auth import principal
from shared.http.json import json_response, query_int
from shared.http.paths import path_uuid
from shared.http.problems import Problem


class _Cursor(msgspec.Struct, array_like=True):
    joined_at: datetime
    user_id: str


def _encode(cursor: _Cursor) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(cursor)).decode().rstrip("=")


def _decode(text: str) -> _Cursor:
    try:
        return msgspec.json.decode(
            base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)), type=_Cursor
        )
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise Problem("invalid_request", "cursor is not one this API handed out") from None


async def list_members(request: web.Request) -> web.Response:
    tenant_id = principal(request).require("redeem")
    group_id = path_uuid(request, "group_id", "group")
    limit = query_int(request, "limit", 100, lo=1, hi=1000)
    after = _decode(request.query["cursor"]) if "cursor" in request.query else None
    async with request.app[POOL].acquire() as conn:
        group = await conn.fetchrow(
            "SELECT members FROM groups WHERE group_id = $1 AND tenant_id = $2", group_id, tenant_id
        )
        if group is None:
            raise Problem("not_found", f"no group {group_id}")
        rows = await conn.fetch(
            "SELECT user_id, joined_at FROM memberships WHERE group_id = $1 "
            "AND ($2::timestamptz IS NULL OR (joined_at, user_id) > ($2, $3)) "
            "ORDER BY joined_at, user_id LIMIT $4",
            group_id,
            after.joined_at if after else None,
            after.user_id if after else None,
            limit + 1,
        )
    page = [MemberOut(r["user_id"], r["joined_at"]) for r in rows[:limit]]
    next_cursor = (
        _encode(_Cursor(page[-1].joined_at, page[-1].user_id)) if len(rows) > limit else None
    )
    return json_response(MembersPage(group_id, group["members"], page, next_cursor))


def routes() -> list[web.RouteDef]:
    return [web.get("/v1/groups/{group_id}/members", list_members)]
