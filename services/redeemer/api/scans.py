"""POST /v1/scans and POST /v1/joins"""

from __future__ import annotations

from aiohttp import web

from services.redeemer.api.schemas import JoinIn, ScanIn
from services.redeemer.context import JOINER, SCANNER
from shared.http.auth import principal
from shared.http.json import json_response, read_json


async def scan(request: web.Request) -> web.Response:
    tenant_id = principal(request).require("redeem")
    body = await read_json(request, ScanIn)
    result = await request.app[SCANNER].scan(tenant_id, body.payload, body.user_id, body.device_id)
    return json_response(result)


async def join(request: web.Request) -> web.Response:
    tenant_id = principal(request).require("redeem")
    body = await read_json(request, JoinIn)
    joined = await request.app[JOINER].join(tenant_id, body.join_token, body.user_id)
    return json_response(joined.membership, status=201 if joined.created else 200)


def routes() -> list[web.RouteDef]:
    return [web.post("/v1/scans", scan), web.post("/v1/joins", join)]
