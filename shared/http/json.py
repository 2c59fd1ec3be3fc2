"""JSON in and out of handlers, validated by the same msgspec types the docs are made from."""

from __future__ import annotations

from typing import Any, TypeVar

import msgspec
from aiohttp import web

from shared.http.problems import Problem

T = TypeVar("T")

_encoder = msgspec.json.Encoder()


def json_response(
    payload: Any, status: int = 200, headers: dict[str, str] | None = None
) -> web.Response:
    return web.Response(
        status=status,
        body=_encoder.encode(payload),
        content_type="application/json",
        headers=headers,
    )


async def read_json(request: web.Request, type_: type[T]) -> T:
    """Decode the body as `type_`; an absent body means `{}` (every field optional)."""
    raw = await request.read()
    if not raw.strip():
        raw = b"{}"
    elif request.content_type not in ("application/json", "application/problem+json"):
        raise Problem(
            "unsupported_media_type",
            f"send the body as application/json, not {request.content_type}",
        )
    return decode_json(raw, type_)


def decode_json(raw: bytes, type_: type[T]) -> T:
    try:
        return msgspec.json.decode(raw, type=type_)
    except msgspec.ValidationError as exc:
        raise Problem("invalid_request", str(exc)) from exc
    except msgspec.DecodeError as exc:
        raise Problem("malformed_json", str(exc)) from exc
