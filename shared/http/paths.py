"""Path parameters."""

from __future__ import annotations

import uuid

import msgspec
from aiohttp import web

from shared.fields import UserId
from shared.http.problems import Problem


def path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    """A UUID from the path; anything else names a resource that does not exist."""
    raw = request.match_info[name]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Problem("not_found", f"no {what} {raw}") from None


def path_user_id(request: web.Request) -> str:
    """A user id from the path, held to the rules of one in a body (a NUL or other control
    character, which PostgreSQL's text cannot hold, is the caller's mistake, not ours)."""
    try:
        return msgspec.convert(request.match_info["user_id"], UserId)
    except msgspec.ValidationError as exc:
        raise Problem("invalid_request", f"user_id in the path: {exc}") from None
