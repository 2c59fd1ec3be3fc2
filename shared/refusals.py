"""Why the domain says no: a stable machine reason, with the words a person reads.

Domain and application code of both services raise `Refusal(Reason.X, detail)`; only the
HTTP layer turns one into a problem (shared/http/problems.py gives each reason its HTTP
status and builds the problem catalogue from this table), so the rules never know HTTP.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class Reason(StrEnum):
    # anything
    NOT_FOUND = "not_found"
    INVALID_REQUEST = "invalid_request"
    CONFLICT = "conflict"
    # issuing
    OUTSIDE_PROFILE = "outside_profile"
    VERIFIED_MEMBERS_REQUIRED = "verified_members_required"
    CODE_NOT_CHANGEABLE = "code_not_changeable"
    # codes and scans, in the order the redeemer checks them
    INVALID_CODE = "invalid_code"
    CODE_NOT_PROPAGATED = "code_not_propagated"
    CODE_NOT_ACTIVE = "code_not_active"
    CODE_EXPIRED = "code_expired"
    CODE_REVOKED = "code_revoked"
    CODE_SUPERSEDED = "code_superseded"
    QR_JOIN_DISABLED = "qr_join_disabled"
    IP_NOT_ALLOWED = "ip_not_allowed"
    LOCATION_REQUIRED = "location_required"
    OUTSIDE_GEOFENCE = "outside_geofence"
    DEVICE_NOT_ALLOWED = "device_not_allowed"
    VERIFICATION_REQUIRED = "verification_required"
    VERIFICATION_UNAVAILABLE = "verification_unavailable"
    VERIFICATION_FAILED = "verification_failed"
    TOO_MANY_ATTEMPTS = "too_many_attempts"
    SCAN_LIMIT_REACHED = "scan_limit_reached"
    DAILY_LIMIT_REACHED = "daily_limit_reached"
    GROUP_FULL = "group_full"
    JOIN_REQUEST_DECIDED = "join_request_decided"
    # join tokens
    INVALID_TOKEN = "invalid_token"
    TOKEN_USED = "token_used"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_MISMATCH = "token_mismatch"


# reason -> (title, message_zh)
WORDS: dict[Reason, tuple[str, str]] = {
    Reason.NOT_FOUND: ("Not found", "资源不存在"),
    Reason.INVALID_REQUEST: ("Invalid request", "请求参数不正确"),
    Reason.CONFLICT: ("Conflict", "请求与当前状态冲突，请重试"),
    Reason.OUTSIDE_PROFILE: ("Outside the profile's bounds", "超出该群类型允许的范围"),
    Reason.VERIFIED_MEMBERS_REQUIRED: (
        "Verified members required",
        "该群人数超过100人，需先有3名成员通过验证方式入群",
    ),
    Reason.CODE_NOT_CHANGEABLE: ("Code cannot be changed", "该二维码已失效，无法修改"),
    Reason.INVALID_CODE: ("Invalid code", "无效的二维码"),
    Reason.CODE_NOT_PROPAGATED: ("Code not known yet", "二维码刚刚生成，请稍后重试"),
    Reason.CODE_NOT_ACTIVE: ("Code not active yet", "该二维码尚未生效"),
    Reason.CODE_EXPIRED: ("Code expired", "该二维码已失效"),
    Reason.CODE_REVOKED: ("Code revoked", "该二维码已被停用"),
    Reason.CODE_SUPERSEDED: ("Code superseded", "该二维码已更新，请扫描最新的二维码"),
    Reason.QR_JOIN_DISABLED: ("Joining by QR code is disabled", "该群已关闭扫码入群"),
    Reason.IP_NOT_ALLOWED: ("Network not allowed", "当前网络不允许加入该群"),
    Reason.LOCATION_REQUIRED: ("Location required", "请允许获取位置信息后再试"),
    Reason.OUTSIDE_GEOFENCE: ("Outside the area", "您不在允许加入该群的区域内"),
    Reason.DEVICE_NOT_ALLOWED: ("Device not allowed", "当前设备不能使用该二维码"),
    Reason.VERIFICATION_REQUIRED: ("Verification required", "请填写验证信息"),
    Reason.VERIFICATION_UNAVAILABLE: (
        "Verification not available here",
        "该二维码需在应用内完成验证",
    ),
    Reason.VERIFICATION_FAILED: ("Verification failed", "验证信息不正确"),
    Reason.TOO_MANY_ATTEMPTS: ("Too many attempts", "尝试次数过多，请10分钟后再试"),
    Reason.SCAN_LIMIT_REACHED: ("Scan limit reached", "该二维码扫码次数已达上限"),
    Reason.DAILY_LIMIT_REACHED: (
        "Daily limit reached",
        "该二维码今日扫码次数已达上限，请明天再试",
    ),
    Reason.GROUP_FULL: ("Group full", "该群人数已满"),
    Reason.JOIN_REQUEST_DECIDED: ("Join request already decided", "该入群申请已处理"),
    Reason.INVALID_TOKEN: ("Invalid join token", "无效的入群凭证"),
    Reason.TOKEN_USED: ("Join token used", "该入群凭证已被使用"),
    Reason.TOKEN_EXPIRED: ("Join token expired", "入群凭证已过期，请重新扫码"),
    Reason.TOKEN_MISMATCH: ("Join token belongs to another user", "该入群凭证不属于当前用户"),
}


class Refusal(Exception):
    """A rule said no. `retry_after` (seconds) when asking again later can succeed; `extra`
    are members a client may read (the field at fault, attempts left, …)."""

    def __init__(
        self, reason: Reason, detail: str, *, retry_after: int | None = None, **extra: Any
    ) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail
        self.retry_after = retry_after
        self.extra = {k: v for k, v in extra.items() if v is not None}

    def adding(self, **extra: Any) -> Refusal:
        """This refusal, with more members for the client (those that are not None)."""
        self.extra.update({k: v for k, v in extra.items() if v is not None})
        return self

    def __reduce__(self) -> tuple[Any, ...]:  # keeps keyword members when copied
        return (_rebuild, (self.reason, self.detail, self.retry_after, self.extra))


def _rebuild(
    reason: Reason, detail: str, retry_after: int | None, extra: dict[str, Any]
) -> Refusal:
    return Refusal(reason, detail, retry_after=retry_after, **extra)
