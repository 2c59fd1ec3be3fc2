"""/v1/groups/{group_id}/codes and /v1/codes/{code_id}"""

from __future__ import annotations

from aiohttp import web

from services.issuer import qr
from services.issuer.api.schemas import IssueCodeIn, RevokeCodeIn
from services.issuer.api.views import code_out
from services.issuer.commands import IssueCode, RevokeCode
from services.issuer.context import BUS, POOL
from services.issuer.domain import code as codes
from shared.clock import utcnow
from shared.http.auth import principal
from shared.http.json import json_response, read_json
from shared.http.paths import path_uuid
from shared.http.problems import Problem
from shared.store.eventstore import load_stream


async def issue_code(request: web.Request) -> web.Response:
    tenant_id = principal(request).require("issue")
    group_id = path_uuid(request, "group_id", "group")
    body = await read_json(request, IssueCodeIn)
    code = await request.app[BUS].handle(
        IssueCode(tenant_id, group_id, body.ttl_seconds, body.max_scans)
    )
    return json_response(
        code_out(code, utcnow()), status=201, headers={"Location": f"/v1/codes/{code.code_id}"}
    )


async def _load(request: web.Request) -> codes.Code:
    tenant_id = principal(request).require("issue")
    code_id = path_uuid(request, "code_id", "code")
    async with request.app[POOL].acquire() as conn:
        code = codes.fold(await load_stream(conn, codes.stream(code_id)))
    if code is None or code.tenant_id != tenant_id:
        raise Problem("not_found", f"no code {code_id}")
    return code


async def get_code(request: web.Request) -> web.Response:
    return json_response(code_out(await _load(request), utcnow()))


async def revoke_code(request: web.Request) -> web.Response:
    tenant_id = principal(request).require("issue")
    code_id = path_uuid(request, "code_id", "code")
    body = await read_json(request, RevokeCodeIn)
    code = await request.app[BUS].handle(RevokeCode(tenant_id, code_id, body.reason))
    return json_response(code_out(code, utcnow()))


async def code_image(request: web.Request) -> web.Response:
    code = await _load(request)
    image = qr.render(code.payload, request.match_info["kind"])
    headers = {"ETag": image.etag, "Cache-Control": "private, max-age=3600"}
    if image.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=image.body, content_type=image.content_type, headers=headers)


def routes() -> list[web.RouteDef]:
    return [
        web.post("/v1/groups/{group_id}/codes", issue_code),
        web.get("/v1/codes/{code_id}", get_code),
        web.post("/v1/codes/{code_id}/revoke", revoke_code),
        web.get(r"/v1/codes/{code_id}/qr.{kind:png|svg}", code_image),
    ]
