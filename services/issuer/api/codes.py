"""/v1/groups/{group_id}/codes and /v1/codes"""

from __future__ import annotations

import uuid

from aiohttp import web

from services.issuer.api import queries
from services.issuer.api.registry import api
from services.issuer.api.schemas import (
    CodeList,
    CodeOut,
    CodesQuery,
    GroupCodesQuery,
    RevokeIn,
)
from services.issuer.commands import AmendCode, IssueCode, RevokeCode
from services.issuer.context import BUS, CLOCK, POOL
from services.issuer.inputs import IssueCodeIn, PatchCodeIn
from shared.http.json import json_response
from shared.http.paths import path_uuid


async def _code(request: web.Request, tenant_id: uuid.UUID, code_id: uuid.UUID) -> CodeOut:
    async with request.app[POOL].acquire() as conn:
        return await queries.code(conn, tenant_id, code_id, request.app[CLOCK]())


@api.route(
    "POST",
    "/v1/groups/{group_id}/codes",
    summary="Issue a code",
    scope="issue",
    tags=["codes"],
    body=IssueCodeIn,
    responses={201: CodeOut},
    errors=["not_found", "outside_profile", "verified_members_required"],
)
async def issue_code(request: web.Request, tenant_id: uuid.UUID, body: IssueCodeIn) -> web.Response:
    """Options absent from the body take the group's profile defaults. With `rotate` (the
    `personal` profile's default) every other live code of the group is superseded at once."""
    group_id = path_uuid(request, "group_id", "group")
    code_id = await request.app[BUS].handle(IssueCode(tenant_id, group_id, body))
    return json_response(
        await _code(request, tenant_id, code_id),
        status=201,
        headers={"Location": f"/v1/codes/{code_id}"},
    )


@api.route(
    "GET",
    "/v1/groups/{group_id}/codes",
    summary="List a group's codes",
    scope="issue",
    tags=["codes"],
    query=GroupCodesQuery,
    responses={200: CodeList},
    errors=["not_found"],
)
async def list_group_codes(
    request: web.Request, tenant_id: uuid.UUID, query: GroupCodesQuery
) -> web.Response:
    group_id = path_uuid(request, "group_id", "group")
    async with request.app[POOL].acquire() as conn:
        await queries.group(conn, tenant_id, group_id)  # 404 for a group not ours
        return json_response(
            await queries.codes(
                conn,
                tenant_id,
                request.app[CLOCK](),
                group_id=group_id,
                status=query.status,
                channel=query.channel,
                limit=query.limit,
                cursor=query.cursor,
            )
        )


@api.route(
    "GET",
    "/v1/codes",
    summary="List codes",
    scope="issue",
    tags=["codes"],
    query=CodesQuery,
    responses={200: CodeList},
)
async def list_codes(request: web.Request, tenant_id: uuid.UUID, query: CodesQuery) -> web.Response:
    async with request.app[POOL].acquire() as conn:
        return json_response(
            await queries.codes(
                conn,
                tenant_id,
                request.app[CLOCK](),
                group_id=query.group_id,
                status=query.status,
                channel=query.channel,
                limit=query.limit,
                cursor=query.cursor,
            )
        )


@api.route(
    "GET",
    "/v1/codes/{code_id}",
    summary="Get a code",
    scope="issue",
    tags=["codes"],
    responses={200: CodeOut},
    errors=["not_found"],
)
async def get_code(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    return json_response(await _code(request, tenant_id, path_uuid(request, "code_id", "code")))


@api.route(
    "PATCH",
    "/v1/codes/{code_id}",
    summary="Change a code",
    scope="issue",
    tags=["codes"],
    body=PatchCodeIn,
    responses={200: CodeOut},
    errors=["not_found", "outside_profile", "code_not_changeable"],
)
async def patch_code(request: web.Request, tenant_id: uuid.UUID, body: PatchCodeIn) -> web.Response:
    """Extend (profiles that allow it), change caps within the profile's bounds, change the
    fallback URL or the channel. Each change is a `CodeAmended` event."""
    code_id = path_uuid(request, "code_id", "code")
    await request.app[BUS].handle(AmendCode(tenant_id, code_id, body))
    return json_response(await _code(request, tenant_id, code_id))


@api.route(
    "POST",
    "/v1/codes/{code_id}/revoke",
    summary="Revoke a code",
    scope="issue",
    tags=["codes"],
    body=RevokeIn,
    responses={200: CodeOut},
    errors=["not_found"],
)
async def revoke_code(request: web.Request, tenant_id: uuid.UUID, body: RevokeIn) -> web.Response:
    code_id = path_uuid(request, "code_id", "code")
    await request.app[BUS].handle(RevokeCode(tenant_id, code_id, body.reason))
    return json_response(await _code(request, tenant_id, code_id))
