"""POST /v1/scans and POST /v1/joins"""

from __future__ import annotations

import uuid

from aiohttp import web

from services.redeemer.api import presenting
from services.redeemer.api.registry import api
from services.redeemer.api.schemas import JoinIn, Membership, ScanIn, ScanOut
from services.redeemer.context import JOINER, SCANNER, TRUSTED
from services.redeemer.domain.inputs import Location, ScanInput
from shared.http.clientip import client_address
from shared.http.json import json_response

SCAN_ERRORS = [
    "invalid_code",
    "code_not_propagated",
    "code_not_active",
    "code_expired",
    "code_revoked",
    "code_superseded",
    "qr_join_disabled",
    "ip_not_allowed",
    "location_required",
    "outside_geofence",
    "device_not_allowed",
    "verification_required",
    "verification_failed",
    "verification_unavailable",
    "too_many_attempts",
    "scan_limit_reached",
    "daily_limit_reached",
    "group_full",
    "rate_limited",
]


@api.route(
    "POST",
    "/v1/scans",
    summary="Decide a scan",
    scope="redeem",
    tags=["scans"],
    body=ScanIn,
    responses={200: ScanOut, 202: ScanOut},
    errors=SCAN_ERRORS,
    per_user=True,
)
async def scan(request: web.Request, tenant_id: uuid.UUID, body: ScanIn) -> web.Response:
    """The platform backend calls this when a person scans. The client IP is the
    connection's, or the X-Forwarded-For address a trusted proxy gives."""
    ip, forwarded = client_address(request, request.app[TRUSTED])
    location = (
        Location(body.location.lat, body.location.lon, body.location.accuracy_m)
        if body.location
        else None
    )
    attributes = {k: v if isinstance(v, list) else [v] for k, v in body.attributes.items()}
    scanned = await request.app[SCANNER].scan(
        tenant_id,
        ScanInput(
            payload=body.payload,
            user_id=body.user_id,
            device_id=body.device_id,
            ip=ip,
            location=location,
            invite_code=body.invite_code,
            phone_last4=body.phone_last4,
            real_name=body.real_name,
            display_name=body.display_name,
            attributes=attributes,
            address_is_persons=forwarded,
        ),
    )
    status, out = presenting.scan_out(scanned)
    return json_response(out, status=status)


@api.route(
    "POST",
    "/v1/joins",
    summary="Redeem a join token",
    scope="redeem",
    tags=["scans"],
    body=JoinIn,
    responses={201: Membership, 200: Membership},
    errors=["invalid_token", "token_used", "token_expired", "token_mismatch", "rate_limited"],
    per_user=True,
)
async def join(request: web.Request, tenant_id: uuid.UUID, body: JoinIn) -> web.Response:
    """201 with the new membership; 200 when the same person redeems the same token again."""
    joined = await request.app[JOINER].join(
        tenant_id, body.join_token, body.user_id, body.device_id
    )
    return json_response(
        presenting.membership(joined.membership), status=201 if joined.created else 200
    )
