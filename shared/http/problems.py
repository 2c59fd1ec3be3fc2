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

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"

# code -> (HTTP status, title, message_zh). One table, so the docs and the code agree.
CATALOGUE: dict[str, tuple[int, str, str]] = {
    # request shape and authentication
    "malformed_json": (400, "Malformed JSON", "请求内容不是有效的 JSON"),
    "invalid_request": (422, "Invalid request", "请求参数不正确"),
    "unsupported_media_type": (415, "Unsupported media type", "请求内容类型不受支持"),
    "payload_too_large": (413, "Payload too large", "请求内容过大"),
    "unauthorized": (401, "Unauthorized", "缺少或无效的 API 密钥"),
    "forbidden": (403, "Forbidden", "该 API 密钥无权执行此操作"),
    "not_found": (404, "Not found", "资源不存在"),
    "method_not_allowed": (405, "Method not allowed", "不支持该请求方法"),
    "conflict": (409, "Conflict", "请求与当前状态冲突，请重试"),
    "internal_error": (500, "Internal error", "服务内部错误"),
    "not_ready": (503, "Not ready", "服务尚未就绪"),
    "busy": (503, "Busy", "服务繁忙，请稍后重试"),
    "idempotency_key_reused": (422, "Idempotency key reused", "该幂等键已用于另一个请求"),
    "idempotency_in_progress": (409, "Request in progress", "相同的请求正在处理中，请稍后重试"),
    # issuing
    "outside_profile": (422, "Outside the profile's bounds", "超出该群类型允许的范围"),
    "verified_members_required": (
        409,
        "Verified members required",
        "该群人数超过100人，需先有3名成员通过验证方式入群",
    ),
    "code_not_changeable": (409, "Code cannot be changed", "该二维码已失效，无法修改"),
    # codes and scans, in the order the redeemer checks them
    "invalid_code": (400, "Invalid code", "无效的二维码"),
    "code_not_propagated": (409, "Code not known yet", "二维码刚刚生成，请稍后重试"),
    "code_not_active": (409, "Code not active yet", "该二维码尚未生效"),
    "code_expired": (410, "Code expired", "该二维码已失效"),
    "code_revoked": (410, "Code revoked", "该二维码已被停用"),
    "code_superseded": (410, "Code superseded", "该二维码已更新，请扫描最新的二维码"),
    "qr_join_disabled": (403, "Joining by QR code is disabled", "该群已关闭扫码入群"),
    "ip_not_allowed": (403, "Network not allowed", "当前网络不允许加入该群"),
    "location_required": (400, "Location required", "请允许获取位置信息后再试"),
    "outside_geofence": (403, "Outside the area", "您不在允许加入该群的区域内"),
    "device_not_allowed": (403, "Device not allowed", "当前设备不能使用该二维码"),
    "verification_required": (400, "Verification required", "请填写验证信息"),
    "verification_failed": (403, "Verification failed", "验证信息不正确"),
    "verification_unavailable": (
        403,
        "Verification not available here",
        "该二维码需在应用内完成验证",
    ),
    "too_many_attempts": (429, "Too many attempts", "尝试次数过多，请10分钟后再试"),
    "scan_limit_reached": (429, "Scan limit reached", "该二维码扫码次数已达上限"),
    "daily_limit_reached": (429, "Daily limit reached", "该二维码今日扫码次数已达上限，请明天再试"),
    "group_full": (409, "Group full", "该群人数已满"),
    "rate_limited": (429, "Too many requests", "操作过于频繁，请稍后再试"),
    "join_request_decided": (409, "Join request already decided", "该入群申请已处理"),
    # the log's proofs
    "not_checkpointed": (
        409,
        "Not covered by a checkpoint yet",
        "该事件尚未被签名检查点覆盖，请稍后重试",
    ),
    # join tokens
    "invalid_token": (400, "Invalid join token", "无效的入群凭证"),
    "token_used": (409, "Join token used", "该入群凭证已被使用"),
    "token_expired": (410, "Join token expired", "入群凭证已过期，请重新扫码"),
    "token_mismatch": (403, "Join token belongs to another user", "该入群凭证不属于当前用户"),
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
