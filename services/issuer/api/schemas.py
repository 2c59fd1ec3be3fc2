"""The issuer's request and response bodies: validated on the way in, documented from here."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

import msgspec
from msgspec import Meta

from shared.http.types import Name, Reason

DAY = 86_400


class CreateGroupIn(msgspec.Struct, forbid_unknown_fields=True):
    name: Name
    max_members: Annotated[int, Meta(ge=1, le=2000)] = 200


class IssueCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    ttl_seconds: Annotated[int, Meta(ge=60, le=365 * DAY)] = 7 * DAY
    max_scans: Annotated[int, Meta(ge=1, le=1_000_000)] | None = 100


class RevokeCodeIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: Reason = "revoked by the integrator"


class GroupOut(msgspec.Struct):
    group_id: uuid.UUID
    name: str
    max_members: int
    created_at: datetime


class CodeLinks(msgspec.Struct):
    qr_png: str
    qr_svg: str


class CodeOut(msgspec.Struct):
    code_id: uuid.UUID
    group_id: uuid.UUID
    status: str
    payload: str
    issued_at: datetime
    expires_at: datetime | None
    max_scans: int | None
    key_id: str
    revoked_at: datetime | None
    revoke_reason: str | None
    links: CodeLinks
