"""RFC 9457 problem details with stable machine codes, English and Chinese text.

Every error either service returns goes through `Problem`: a stable `code` that clients
branch on, an English `detail`, a Chinese `message_zh` for the person holding the phone,
and extra members such as `fallback_url` where they help.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import asyncpg
import msgspec
from aiohttp import web

from shared.db import unavailable
from shared.http.testhooks import crash_after_commit
from shared.refusals import WORDS, Reason, Refusal

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# What only the HTTP layer refuses: request shape, authentication, the service's state.
# code -> (HTTP status, title, message_zh)
_HTTP: dict[str, tuple[int, str, str]] = {
    "malformed_json": (400, "Malformed JSON", "请求内容不是有效的 JSON"),
    "unsupported_media_type": (415, "Unsupported media type", "请求内容类型不受支持"),
    "payload_too_large": (413, "Payload too large", "请求内容过大"),
    "unauthorized": (401, "Unauthorized", "缺少或无效的 API 密钥"),
    "forbidden": (403, "Forbidden", "该 API 密钥无权执行此操作"),
    "method_not_allowed": (405, "Method not allowed", "不支持该请求方法"),
    "internal_error": (500, "Internal error", "服务内部错误"),
    "not_ready": (503, "Not ready", "服务尚未就绪"),
    "busy": (503, "Busy", "服务繁忙，请稍后重试"),
    "idempotency_key_reused": (422, "Idempotency key reused", "该幂等键已用于另一个请求"),
    "idempotency_in_progress": (409, "Request in progress", "相同的请求正在处理中，请稍后重试"),
    "rate_limited": (429, "Too many requests", "操作过于频繁，请稍后再试"),
    "not_checkpointed": (
        409,
        "Not covered by a checkpoint yet",
        "该事件尚未被签名检查点覆盖，请稍后重试",
    ),
}

# The HTTP status of each domain refusal (shared/refusals.py).
STATUS: dict[Reason, int] = {
    Reason.NOT_FOUND: 404,
    Reason.INVALID_REQUEST: 422,
    Reason.CONFLICT: 409,
    Reason.OUTSIDE_PROFILE: 422,
    Reason.VERIFIED_MEMBERS_REQUIRED: 409,
    Reason.CODE_NOT_CHANGEABLE: 409,
    Reason.INVALID_CODE: 400,
    Reason.CODE_NOT_PROPAGATED: 409,
    Reason.CODE_NOT_ACTIVE: 409,
    Reason.CODE_EXPIRED: 410,
    Reason.CODE_REVOKED: 410,
    Reason.CODE_SUPERSEDED: 410,
    Reason.QR_JOIN_DISABLED: 403,
    Reason.IP_NOT_ALLOWED: 403,
    Reason.LOCATION_REQUIRED: 400,
    Reason.OUTSIDE_GEOFENCE: 403,
    Reason.DEVICE_NOT_ALLOWED: 403,
    Reason.VERIFICATION_REQUIRED: 400,
    Reason.VERIFICATION_UNAVAILABLE: 403,
    Reason.VERIFICATION_FAILED: 403,
    Reason.TOO_MANY_ATTEMPTS: 429,
    Reason.SCAN_LIMIT_REACHED: 429,
    Reason.DAILY_LIMIT_REACHED: 429,
    Reason.GROUP_FULL: 409,
    Reason.JOIN_REQUEST_DECIDED: 409,
    Reason.INVALID_TOKEN: 400,
    Reason.TOKEN_USED: 409,
    Reason.TOKEN_EXPIRED: 410,
    Reason.TOKEN_MISMATCH: 403,
}

# code -> (HTTP status, title, message_zh): one table, built from the two above, so the docs,
# the OpenAPI document and the answers agree.
CATALOGUE: dict[str, tuple[int, str, str]] = {
    **_HTTP,
    **{reason.value: (STATUS[reason], *WORDS[reason]) for reason in Reason},
}


class Problem(Exception):
    def __init__(
        self,
        code: str,
        detail: str,
        *,
        status: int | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        known = CATALOGUE.get(code)
        if known is None and status is None:
            raise ValueError(f"problem code {code} is not in the catalogue")
        self.code = code
        self.status = status if status is not None else known[0]  # type: ignore[index]
        self.title = known[1] if known else code.replace("_", " ").capitalize()
        self.message_zh = known[2] if known else None
        self.detail = detail
        self.headers = dict(headers or {})
        self.extra = {k: v for k, v in extra.items() if v is not None}
        super().__init__(f"{code}: {detail}")

    @classmethod
    def of(cls, refusal: Refusal) -> Problem:
        """A domain refusal as the problem the client gets."""
        headers = {} if refusal.retry_after is None else {"Retry-After": str(refusal.retry_after)}
        return cls(refusal.reason.value, refusal.detail, headers=headers, **refusal.extra)

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": f"urn:qunma:problem:{self.code}",
            "title": self.title,
            "status": self.status,
            "code": self.code,
            "detail": self.detail,
        }
        if self.message_zh:
            body["message_zh"] = self.message_zh
        body.update(self.extra)
        return body

    def response(self) -> web.Response:
        return web.Response(
            status=self.status,
            body=msgspec.json.encode(self.body()),
            content_type=PROBLEM_JSON,
            headers=self.headers,
        )


_BY_STATUS = {
    400: "malformed_json",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
}

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


# A handler's database work runs in transactions that either commit or leave nothing, so a
# request whose transaction PostgreSQL rolled back to break a deadlock (or a serialization
# failure) is run again, as a client would retry it, instead of answering 500.
ROLLED_BACK_ATTEMPTS = 3


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    for attempt in range(1, ROLLED_BACK_ATTEMPTS + 1):
        try:
            response = await _answer(request, handler)
            crash_after_commit(request)  # the fault suite's kill; a no-op unless it asks
            return response
        except asyncpg.exceptions.TransactionRollbackError as exc:
            log.warning(
                "%s %s: transaction rolled back (%s), attempt %d of %d",
                request.method,
                request.path,
                type(exc).__name__,
                attempt,
                ROLLED_BACK_ATTEMPTS,
            )
            await asyncio.sleep(0.01 * attempt)
    return Problem(
        "busy",
        "the database is busy with conflicting requests; retry",
        headers={"Retry-After": "1"},
    ).response()


def not_ready() -> Problem:
    """What a request gets while a dependency (the database) cannot be reached."""
    return Problem(
        "not_ready",
        "the service cannot reach its database right now; retry in a moment",
        headers={"Retry-After": "1"},
    )


class _Outages:
    """Logs a dependency outage once a second with a count, not once per request."""

    def __init__(self) -> None:
        self._since = 0.0
        self._count = 0

    def note(self, request: web.Request, exc: BaseException) -> None:
        self._count += 1
        now = time.monotonic()
        if now - self._since >= 1.0:
            log.warning(
                "database unavailable (%s: %s): %d request(s) answered 503 not_ready, "
                "the latest %s %s",
                type(exc).__name__,
                exc,
                self._count,
                request.method,
                request.path,
            )
            self._since, self._count = now, 0


_outages = _Outages()


def note_outage(request: web.Request, exc: BaseException) -> None:
    _outages.note(request, exc)


async def _answer(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except asyncpg.exceptions.TransactionRollbackError:
        raise
    except Problem as problem:
        return problem.response()
    except Refusal as refusal:
        return Problem.of(refusal).response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        return _from_http_error(request, exc).response()
    except Exception as exc:
        if unavailable(exc):
            note_outage(request, exc)
            return not_ready().response()
        log.exception("unhandled error on %s %s", request.method, request.path)
        return Problem(
            "internal_error", "an unexpected error occurred; it has been logged"
        ).response()


def _from_http_error(request: web.Request, exc: web.HTTPException) -> Problem:
    """aiohttp's own errors (no route, wrong method, body too large) as problem+json."""
    code = _BY_STATUS.get(exc.status)
    if code is None:
        return Problem("http_error", exc.reason, status=exc.status)
    if exc.status == 413:
        return Problem(code, f"the request body is larger than {request.client_max_size} bytes")
    if exc.status == 404:
        return Problem(code, f"no resource at {request.path}")
    if exc.status == 405:
        return Problem(code, f"{request.method} is not allowed on {request.path}")
    return Problem(code, exc.text or exc.reason)
