"""/v1/groups/{group_id}/members and the group's join requests"""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import msgspec
from aiohttp import web

from services.redeemer.api import presenting
from services.redeemer.api.registry import api
from services.redeemer.api.schemas import (
    DeclineIn,
    JoinRequestList,
    JoinRequestOut,
    JoinRequestsQuery,
    MemberOut,
    Membership,
    MembersPage,
    PageQuery,
)
from services.redeemer.application.members import leave
from services.redeemer.context import OUTBOX, PEOPLE, POOL, REQUESTS
from shared.http.auth import principal
from shared.http.cursor import decode_cursor, encode_cursor
from shared.http.json import json_response
from shared.http.paths import path_user_id, path_uuid
from shared.refusals import Reason, Refusal


class _After(msgspec.Struct, array_like=True):
    at: datetime
    key: str


async def _group_members(request: web.Request, tenant_id: uuid.UUID, group_id: uuid.UUID) -> int:
    async with request.app[POOL].acquire() as conn:
        members = await conn.fetchval(
            "SELECT members FROM groups WHERE group_id = $1 AND tenant_id = $2", group_id, tenant_id
        )
    if members is None:
        raise Refusal(Reason.NOT_FOUND, f"no group {group_id}")
    return int(members)


@api.route(
    "GET",
    "/v1/groups/{group_id}/members",
    summary="List members",
    scope="redeem",
    tags=["members"],
    query=PageQuery,
    responses={200: MembersPage},
    errors=["not_found"],
)
async def list_members(
    request: web.Request, tenant_id: uuid.UUID, query: PageQuery
) -> web.Response:
    group_id = path_uuid(request, "group_id", "group")
    count = await _group_members(request, tenant_id, group_id)
    after = decode_cursor(query.cursor, _After) if query.cursor else None
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            "SELECT user_id, joined_at FROM memberships WHERE group_id = $1 "
            "AND ($2::timestamptz IS NULL OR (joined_at, user_id) > ($2, $3)) "
            "ORDER BY joined_at, user_id LIMIT $4",
            group_id,
            after.at if after else None,
            after.key if after else None,
            query.limit + 1,
        )
    page = [MemberOut(r["user_id"], r["joined_at"]) for r in rows[: query.limit]]
    cursor = (
        encode_cursor(_After(page[-1].joined_at, page[-1].user_id))
        if len(rows) > query.limit
        else None
    )
    return json_response(MembersPage(group_id, count, page, cursor))


@api.route(
    "DELETE",
    "/v1/groups/{group_id}/members/{user_id}",
    summary="A member leaves",
    scope="redeem",
    tags=["members"],
    responses={204: None},
    errors=["invalid_request", "not_found"],
)
async def remove_member(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    """The seat is free at once; recorded as MemberLeft."""
    group_id = path_uuid(request, "group_id", "group")
    await leave(
        request.app[OUTBOX], request.app[PEOPLE], tenant_id, group_id, path_user_id(request)
    )
    return web.Response(status=204)


def _request_out(row: asyncpg.Record) -> JoinRequestOut:
    return JoinRequestOut(
        join_request_id=row["request_id"],
        group_id=row["group_id"],
        user_id=row["user_id"],
        mode=row["mode"],
        real_name=row["real_name"],
        display_name=row["display_name"],
        status=row["status"],
        created_at=row["created_at"],
        decided_at=row["decided_at"],
        decline_reason=row["decline_reason"],
        code_id=row["code_id"],
    )


@api.route(
    "GET",
    "/v1/groups/{group_id}/join-requests",
    summary="List join requests",
    scope="issue",
    tags=["join requests"],
    query=JoinRequestsQuery,
    responses={200: JoinRequestList},
    errors=["not_found"],
)
async def list_join_requests(
    request: web.Request, tenant_id: uuid.UUID, query: JoinRequestsQuery
) -> web.Response:
    group_id = path_uuid(request, "group_id", "group")
    await _group_members(request, tenant_id, group_id)
    after = decode_cursor(query.cursor, _After) if query.cursor else None
    async with request.app[POOL].acquire() as conn:
        rows = await conn.fetch(
            "SELECT * FROM join_requests WHERE group_id = $1 AND status = $2 "
            "AND ($3::timestamptz IS NULL OR (created_at, request_id::text) > ($3, $4)) "
            "ORDER BY created_at, request_id::text LIMIT $5",
            group_id,
            query.status,
            after.at if after else None,
            after.key if after else None,
            query.limit + 1,
        )
    page = [_request_out(r) for r in rows[: query.limit]]
    cursor = (
        encode_cursor(_After(page[-1].created_at, str(page[-1].join_request_id)))
        if len(rows) > query.limit
        else None
    )
    return json_response(JoinRequestList(page, cursor))


@api.route(
    "POST",
    "/v1/join-requests/{request_id}/approve",
    summary="Approve a join request",
    scope="issue",
    tags=["join requests"],
    responses={201: Membership, 200: Membership},
    errors=["not_found", "join_request_decided", "group_full"],
)
async def approve(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    """The membership is made at once, within the group's member cap."""
    request_id = path_uuid(request, "request_id", "join request")
    joined = await request.app[REQUESTS].approve(tenant_id, request_id, principal(request).key_id)
    return json_response(
        presenting.membership(joined.membership), status=201 if joined.created else 200
    )


@api.route(
    "POST",
    "/v1/join-requests/{request_id}/decline",
    summary="Decline a join request",
    scope="issue",
    tags=["join requests"],
    body=DeclineIn,
    responses={204: None},
    errors=["not_found", "join_request_decided"],
)
async def decline(request: web.Request, tenant_id: uuid.UUID, body: DeclineIn) -> web.Response:
    request_id = path_uuid(request, "request_id", "join request")
    await request.app[REQUESTS].decline(
        tenant_id, request_id, principal(request).key_id, body.reason
    )
    return web.Response(status=204)
