"""/v1/live-codes"""

from __future__ import annotations

import uuid

from aiohttp import web

from services.issuer.api import queries
from services.issuer.api.registry import api
from services.issuer.api.schemas import (
    ListQuery,
    LiveCodeList,
    LiveCodeOut,
    RevokeIn,
)
from services.issuer.commands import ChangeLiveCode, CreateLiveCode, RevokeLiveCode
from services.issuer.context import BUS, POOL
from services.issuer.inputs import CreateLiveCodeIn, PatchLiveCodeIn
from shared.http.json import json_response
from shared.http.paths import path_uuid


async def _out(request: web.Request, tenant_id: uuid.UUID, live_code_id: uuid.UUID) -> LiveCodeOut:
    async with request.app[POOL].acquire() as conn:
        return await queries.live_code(conn, tenant_id, live_code_id)


@api.route(
    "POST",
    "/v1/live-codes",
    summary="Create a live code (活码)",
    scope="issue",
    tags=["live codes"],
    body=CreateLiveCodeIn,
    responses={201: LiveCodeOut},
    errors=["outside_profile"],
)
async def create_live_code(
    request: web.Request, tenant_id: uuid.UUID, body: CreateLiveCodeIn
) -> web.Response:
    """One QR code that never changes, spreading people over `group_ids` by `strategy`; with
    `auto_create`, the issuer opens the next group itself when every group is full."""
    live_code_id = await request.app[BUS].handle(CreateLiveCode(tenant_id, body))
    return json_response(
        await _out(request, tenant_id, live_code_id),
        status=201,
        headers={"Location": f"/v1/live-codes/{live_code_id}"},
    )


@api.route(
    "GET",
    "/v1/live-codes",
    summary="List live codes",
    scope="issue",
    tags=["live codes"],
    query=ListQuery,
    responses={200: LiveCodeList},
)
async def list_live_codes(
    request: web.Request, tenant_id: uuid.UUID, query: ListQuery
) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response(await queries.live_codes(conn, tenant_id, query.limit, query.cursor))


@api.route(
    "GET",
    "/v1/live-codes/{live_code_id}",
    summary="Get a live code",
    scope="issue",
    tags=["live codes"],
    responses={200: LiveCodeOut},
    errors=["not_found"],
)
async def get_live_code(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    return json_response(
        await _out(request, tenant_id, path_uuid(request, "live_code_id", "live code"))
    )


@api.route(
    "PATCH",
    "/v1/live-codes/{live_code_id}",
    summary="Change a live code",
    scope="issue",
    tags=["live codes"],
    body=PatchLiveCodeIn,
    responses={200: LiveCodeOut},
    errors=["not_found", "code_not_changeable"],
)
async def patch_live_code(
    request: web.Request, tenant_id: uuid.UUID, body: PatchLiveCodeIn
) -> web.Response:
    """Add or remove groups, or change any other setting; the QR code stays the same."""
    live_code_id = path_uuid(request, "live_code_id", "live code")
    await request.app[BUS].handle(ChangeLiveCode(tenant_id, live_code_id, body))
    return json_response(await _out(request, tenant_id, live_code_id))


@api.route(
    "POST",
    "/v1/live-codes/{live_code_id}/revoke",
    summary="Revoke a live code",
    scope="issue",
    tags=["live codes"],
    body=RevokeIn,
    responses={200: LiveCodeOut},
    errors=["not_found"],
)
async def revoke_live_code(
    request: web.Request, tenant_id: uuid.UUID, body: RevokeIn
) -> web.Response:
    live_code_id = path_uuid(request, "live_code_id", "live code")
    await request.app[BUS].handle(RevokeLiveCode(tenant_id, live_code_id, body.reason))
    return json_response(await _out(request, tenant_id, live_code_id))
