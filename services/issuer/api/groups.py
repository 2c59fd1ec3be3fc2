"""/v1/groups"""

from __future__ import annotations

import uuid

from aiohttp import web
from msgspec import UNSET

from services.issuer.api import queries
from services.issuer.api.registry import api
from services.issuer.api.schemas import CreateGroupIn, GroupList, GroupOut, ListQuery
from services.issuer.commands import CreateGroup
from services.issuer.context import BUS, POOL
from shared.http.json import json_response
from shared.http.paths import path_uuid


@api.route(
    "POST",
    "/v1/groups",
    summary="Create a group",
    scope="issue",
    tags=["groups"],
    body=CreateGroupIn,
    responses={201: GroupOut},
    errors=["outside_profile"],
)
async def create_group(
    request: web.Request, tenant_id: uuid.UUID, body: CreateGroupIn
) -> web.Response:
    """The profile sets the defaults and bounds of the group's codes (docs/api.md, Profiles)."""
    max_members = None if body.max_members is UNSET else body.max_members
    group_id = await request.app[BUS].handle(
        CreateGroup(tenant_id, body.name, body.profile, max_members, body.timezone)
    )
    async with request.app[POOL].acquire() as conn:
        out = await queries.group(conn, tenant_id, group_id)
    return json_response(out, status=201, headers={"Location": f"/v1/groups/{group_id}"})


@api.route(
    "GET",
    "/v1/groups",
    summary="List groups",
    scope="issue",
    tags=["groups"],
    query=ListQuery,
    responses={200: GroupList},
)
async def list_groups(request: web.Request, tenant_id: uuid.UUID, query: ListQuery) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response(await queries.groups(conn, tenant_id, query.limit, query.cursor))


@api.route(
    "GET",
    "/v1/groups/{group_id}",
    summary="Get a group",
    scope="issue",
    tags=["groups"],
    responses={200: GroupOut},
    errors=["not_found"],
)
async def get_group(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    group_id = path_uuid(request, "group_id", "group")
    async with request.app[POOL].acquire() as conn:
        return json_response(await queries.group(conn, tenant_id, group_id))
