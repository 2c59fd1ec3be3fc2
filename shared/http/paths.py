"""Path parameters."""

from __future__ import annotations

import uuid

from aiohttp import web

from shared.http.problems import Problem


def path_uuid(request: web.Request, name: str, what: str) -> uuid.UUID:
    """A UUID from the path; anything else names a resource that does not exist."""
    raw = request.match_info[name]
    try:
        return uuid.UUID(raw)
    except ValueError:
        raise Problem("not_found", f"no {what} {raw}") from None
