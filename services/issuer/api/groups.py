"""/v1/groups"""

from __future__ import annotations

from aiohttp import web

from services.issuer.api.schemas import CreateGroupIn
from services.issuer.api.views import group_out
from services.issuer.commands import CreateGroup
from services.issuer.context import BUS, POOL
from services.issuer.domain import group as groups
from shared.http.auth import principal
from shared.http.json import json_response, read_json
from shared.http.paths import path_uuid
from shared.http.problems import Problem
from shared.store.eventstore import load_stream


async def create_group(request: web.Request) -> web.Response:
    tenant_id = principal(request).require("issue")
    body = await read_json(request, CreateGroupIn)
    group = await request.app[BUS].handle(CreateGroup(tenant_id, body.name, body.max_members))
    return json_response(
        group_out(group), status=201, headers={"Location": f"/v1/groups/{group.group_id}"}
    )


async def get_group(request: web.Request) -> web.Response:
    tenant_id = principal(request).require("issue")
    group_id = path_uuid(request, "group_id", "group")
    async with request.app[POOL].acquire() as conn:
        group = groups.fold(await load_stream(conn, groups.stream(group_id)))
    if group is None or group.tenant_id != tenant_id:
        raise Problem("not_found", f"no group {group_id}")
    return json_response(group_out(group))


def routes() -> list[web.RouteDef]:
    return [
        web.post("/v1/groups", create_group),
        web.get("/v1/groups/{group_id}", get_group),
    ]
