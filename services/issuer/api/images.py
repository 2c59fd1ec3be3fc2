"""QR images and posters of codes and live codes."""

from __future__ import annotations

import uuid
from datetime import datetime
from zoneinfo import ZoneInfo

import asyncpg
import msgspec
from aiohttp import web

from services.issuer.api.registry import api
from services.issuer.api.schemas import ImageQuery
from services.issuer.context import POOL
from services.issuer.images import Image, PosterText, poster, qr_image
from shared.events.issuer import LiveCodeConfigured
from shared.http.endpoints import Media
from shared.http.paths import path_uuid
from shared.http.problems import Problem

_QR = {
    200: Media("image/png", "the QR image in the format of the path: png, svg, pdf or eps"),
    304: None,
}
_POSTER = {
    200: Media("application/pdf", "an A4 poster: name, QR code, validity, channel"),
    304: None,
}


def _serve(request: web.Request, image: Image) -> web.Response:
    headers = {"ETag": image.etag, "Cache-Control": "private, max-age=300"}
    if image.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    return web.Response(body=image.body, content_type=image.content_type, headers=headers)


def _qr(request: web.Request, payload: str, query: ImageQuery) -> web.Response:
    return _serve(
        request,
        qr_image(
            payload,
            request.match_info["kind"],
            query.scale,
            query.border,
            query.dark,
            query.light,
            query.error,
        ),
    )


def _validity(expires_at: datetime | None, timezone: str) -> str:
    if expires_at is None:
        return "长期有效 · Does not expire"
    local = expires_at.astimezone(ZoneInfo(timezone))
    return f"有效期至 {local:%Y-%m-%d %H:%M} ({timezone}) · Valid until then"


async def _code_row(request: web.Request, tenant_id: uuid.UUID) -> asyncpg.Record:
    code_id = path_uuid(request, "code_id", "code")
    async with request.app[POOL].acquire() as conn:
        row: asyncpg.Record | None = await conn.fetchrow(
            "SELECT c.payload, c.expires_at, c.channel, g.name, g.timezone FROM codes c "
            "JOIN groups g USING (group_id) WHERE c.code_id = $1 AND c.tenant_id = $2",
            code_id,
            tenant_id,
        )
    if row is None:
        raise Problem("not_found", f"no code {code_id}")
    return row


async def _live_row(request: web.Request, tenant_id: uuid.UUID) -> LiveCodeConfigured:
    live_code_id = path_uuid(request, "live_code_id", "live code")
    async with request.app[POOL].acquire() as conn:
        config = await conn.fetchval(
            "SELECT config FROM live_codes WHERE live_code_id = $1 AND tenant_id = $2",
            live_code_id,
            tenant_id,
        )
    if config is None:
        raise Problem("not_found", f"no live code {live_code_id}")
    return msgspec.json.decode(config, type=LiveCodeConfigured)


@api.route(
    "GET",
    "/v1/codes/{code_id}/qr.{kind:png|svg|pdf|eps}",
    summary="A code's QR image",
    scope="issue",
    tags=["images"],
    query=ImageQuery,
    responses=_QR,
    errors=["not_found"],
)
async def code_qr(request: web.Request, tenant_id: uuid.UUID, query: ImageQuery) -> web.Response:
    """Rendered once per variant and cached; a strong ETag answers If-None-Match with 304."""
    row = await _code_row(request, tenant_id)
    return _qr(request, row["payload"], query)


@api.route(
    "GET",
    "/v1/codes/{code_id}/poster.pdf",
    summary="A printable poster of a code",
    scope="issue",
    tags=["images"],
    responses=_POSTER,
    errors=["not_found"],
)
async def code_poster(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    row = await _code_row(request, tenant_id)
    text = PosterText(row["name"], _validity(row["expires_at"], row["timezone"]), row["channel"])
    return _serve(request, poster(row["payload"], text))


@api.route(
    "GET",
    "/v1/live-codes/{live_code_id}/qr.{kind:png|svg|pdf|eps}",
    summary="A live code's QR image",
    scope="issue",
    tags=["images"],
    query=ImageQuery,
    responses=_QR,
    errors=["not_found"],
)
async def live_code_qr(
    request: web.Request, tenant_id: uuid.UUID, query: ImageQuery
) -> web.Response:
    config = await _live_row(request, tenant_id)
    return _qr(request, config.payload, query)


@api.route(
    "GET",
    "/v1/live-codes/{live_code_id}/poster.pdf",
    summary="A printable poster of a live code",
    scope="issue",
    tags=["images"],
    responses=_POSTER,
    errors=["not_found"],
)
async def live_code_poster(request: web.Request, tenant_id: uuid.UUID) -> web.Response:
    config = await _live_row(request, tenant_id)
    return _serve(
        request,
        poster(config.payload, PosterText(config.name, _validity(None, "UTC"), config.channel)),
    )
