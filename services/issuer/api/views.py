"""Turning aggregates into response bodies."""

from __future__ import annotations

from datetime import datetime

from services.issuer.api.schemas import CodeLinks, CodeOut, GroupOut
from services.issuer.domain.code import Code
from services.issuer.domain.group import Group


def group_out(group: Group) -> GroupOut:
    return GroupOut(group.group_id, group.name, group.max_members, group.created_at)


def code_out(code: Code, now: datetime) -> CodeOut:
    base = f"/v1/codes/{code.code_id}"
    return CodeOut(
        code_id=code.code_id,
        group_id=code.group_id,
        status=code.status(now),
        payload=code.payload,
        issued_at=code.issued_at,
        expires_at=code.expires_at,
        max_scans=code.max_scans,
        key_id=code.key_id,
        revoked_at=code.revoked_at,
        revoke_reason=code.revoke_reason,
        links=CodeLinks(qr_png=f"{base}/qr.png", qr_svg=f"{base}/qr.svg"),
    )
