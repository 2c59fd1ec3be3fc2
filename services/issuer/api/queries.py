"""Reading the issuer's read model into response bodies (lists paginate by cursor)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from services.issuer.api.schemas import (
    CodeLinks,
    CodeList,
    CodeOut,
    Counters,
    GroupList,
    GroupOut,
    LiveCodeList,
    LiveCodeOut,
    LiveGroupOut,
    LiveLinks,
    VerificationOut,
)
from services.issuer.inputs import (
    AutoCreateIn,
    GeofenceIn,
    RuleIn,
)
from shared.dbtypes import Conn
from shared.events.issuer import LiveCodeConfigured
from shared.http.cursor import decode_cursor, encode_cursor
from shared.http.problems import Problem


class _Page(msgspec.Struct, array_like=True):
    at: datetime
    id: uuid.UUID


class _Params:
    """Numbered query parameters, so optional filters can be added in any order."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


# -- groups ----------------------------------------------------------------------------


def group_out(row: asyncpg.Record) -> GroupOut:
    return GroupOut(
        group_id=row["group_id"],
        name=row["name"],
        profile=row["profile"],
        max_members=row["max_members"],
        timezone=row["timezone"],
        created_at=row["created_at"],
        member_count=row["members"],
        verified_joins=row["verified_joins"],
        live_code_id=row["live_code_id"],
    )


async def group(conn: Conn, tenant_id: uuid.UUID, group_id: uuid.UUID) -> GroupOut:
    row = await conn.fetchrow(
        "SELECT * FROM groups WHERE group_id = $1 AND tenant_id = $2", group_id, tenant_id
    )
    if row is None:
        raise Problem("not_found", f"no group {group_id}")
    return group_out(row)


async def groups(conn: Conn, tenant_id: uuid.UUID, limit: int, cursor: str | None) -> GroupList:
    p = _Params()
    where = [f"tenant_id = {p(tenant_id)}"]
    if cursor:
        after = decode_cursor(cursor, _Page)
        where.append(f"(created_at, group_id) < ({p(after.at)}, {p(after.id)})")
    rows = await conn.fetch(
        f"SELECT * FROM groups WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, group_id DESC LIMIT {p(limit + 1)}",
        *p.values,
    )
    page = [group_out(r) for r in rows[:limit]]
    more = len(rows) > limit
    return GroupList(
        page, encode_cursor(_Page(page[-1].created_at, page[-1].group_id)) if more else None
    )


# -- codes -----------------------------------------------------------------------------

_CODE_SELECT = """
SELECT c.*, g.timezone,
       coalesce(d.scans, 0) AS scans_today,
       qunma_code_status(c.revoked_at IS NOT NULL, c.superseded_at IS NOT NULL,
                         c.not_before, c.expires_at, {now}) AS status
FROM codes c
JOIN groups g ON g.group_id = c.group_id
LEFT JOIN code_daily_scans d
       ON d.code_id = c.code_id AND d.day = ({now} AT TIME ZONE g.timezone)::date
"""


def _links(base: str) -> dict[str, str]:
    return {
        "qr_png": f"{base}/qr.png",
        "qr_svg": f"{base}/qr.svg",
        "qr_pdf": f"{base}/qr.pdf",
        "qr_eps": f"{base}/qr.eps",
        "poster_pdf": f"{base}/poster.pdf",
    }


def code_out(row: asyncpg.Record) -> CodeOut:
    max_scans, daily = row["max_scans"], row["daily_scan_limit"]
    return CodeOut(
        code_id=row["code_id"],
        group_id=row["group_id"],
        status=row["status"],
        payload=row["payload"],
        issued_at=row["issued_at"],
        not_before=row["not_before"],
        expires_at=row["expires_at"],
        max_scans=max_scans,
        daily_scan_limit=daily,
        verification=VerificationOut(
            mode=row["verification_mode"],
            invite_code=row["invite_code"],
            phone_last4_count=row["phone_last4_count"],
        ),
        ip_allowlist=list(row["ip_allowlist"]),
        geofence=msgspec.json.decode(row["geofence"], type=GeofenceIn) if row["geofence"] else None,
        bind_device=row["bind_device"],
        fallback_url=row["fallback_url"],
        channel=row["channel"],
        key_id=row["key_id"],
        revoked_at=row["revoked_at"],
        revoke_reason=row["revoke_reason"],
        superseded_at=row["superseded_at"],
        superseded_by=row["superseded_by"],
        counters=Counters(
            scans_used=row["scans_used"],
            scans_today=row["scans_today"],
            scans_remaining=max(0, max_scans - row["scans_used"])
            if max_scans is not None
            else None,
            scans_today_remaining=max(0, daily - row["scans_today"]) if daily is not None else None,
            scans_rejected=row["scans_rejected"],
            joins=row["joins"],
            last_scan_at=row["last_scan_at"],
        ),
        links=CodeLinks(**_links(f"/v1/codes/{row['code_id']}")),
    )


async def code(conn: Conn, tenant_id: uuid.UUID, code_id: uuid.UUID, now: datetime) -> CodeOut:
    p = _Params()
    at = p(now)
    row = await conn.fetchrow(
        _CODE_SELECT.format(now=at)
        + f" WHERE c.code_id = {p(code_id)} AND c.tenant_id = {p(tenant_id)}",
        *p.values,
    )
    if row is None:
        raise Problem("not_found", f"no code {code_id}")
    return code_out(row)


async def codes(
    conn: Conn,
    tenant_id: uuid.UUID,
    now: datetime,
    *,
    group_id: uuid.UUID | None,
    status: str | None,
    channel: str | None,
    limit: int,
    cursor: str | None,
) -> CodeList:
    p = _Params()
    at = p(now)
    where = [f"c.tenant_id = {p(tenant_id)}"]
    if group_id is not None:
        where.append(f"c.group_id = {p(group_id)}")
    if channel is not None:
        where.append(f"c.channel = {p(channel)}")
    if cursor:
        after = decode_cursor(cursor, _Page)
        where.append(f"(c.issued_at, c.code_id) < ({p(after.at)}, {p(after.id)})")
    sql = f"SELECT * FROM ({_CODE_SELECT.format(now=at)} WHERE {' AND '.join(where)}) listed"
    if status is not None:
        sql += f" WHERE status = {p(status)}"
    rows = await conn.fetch(
        sql + f" ORDER BY issued_at DESC, code_id DESC LIMIT {p(limit + 1)}", *p.values
    )
    page = [code_out(r) for r in rows[:limit]]
    more = len(rows) > limit
    return CodeList(
        page, encode_cursor(_Page(page[-1].issued_at, page[-1].code_id)) if more else None
    )


# -- live codes ------------------------------------------------------------------------


async def _live_out(conn: Conn, row: asyncpg.Record) -> LiveCodeOut:
    config = msgspec.json.decode(row["config"], type=LiveCodeConfigured)
    members = {
        r["group_id"]: r
        for r in await conn.fetch(
            "SELECT group_id, name, members, max_members FROM groups WHERE group_id = ANY($1)",
            config.group_ids,
        )
    }
    auto = config.auto_create
    return LiveCodeOut(
        live_code_id=row["live_code_id"],
        name=config.name,
        status="revoked" if row["revoked_at"] else "active",
        payload=config.payload,
        strategy=config.strategy,
        switch_at=config.switch_at,
        rules=[RuleIn(match=r.match, group_id=r.group_id) for r in config.rules],
        auto_create=AutoCreateIn(
            base_name=auto.base_name,
            max_members=auto.max_members,
            max_groups=auto.max_groups,
            profile=auto.profile,  # type: ignore[arg-type]
        )
        if auto
        else None,
        fallback_url=config.fallback_url,
        channel=config.channel,
        groups=[
            LiveGroupOut(
                group_id=g,
                name=members[g]["name"],
                member_count=members[g]["members"],
                max_members=members[g]["max_members"],
            )
            for g in config.group_ids
            if g in members
        ],
        scans_used=row["scans_used"],
        scans_rejected=row["scans_rejected"],
        joins=row["joins"],
        key_id=row["key_id"],
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
        revoke_reason=row["revoke_reason"],
        links=LiveLinks(**_links(f"/v1/live-codes/{row['live_code_id']}")),
    )


async def live_code(conn: Conn, tenant_id: uuid.UUID, live_code_id: uuid.UUID) -> LiveCodeOut:
    row = await conn.fetchrow(
        "SELECT * FROM live_codes WHERE live_code_id = $1 AND tenant_id = $2",
        live_code_id,
        tenant_id,
    )
    if row is None:
        raise Problem("not_found", f"no live code {live_code_id}")
    return await _live_out(conn, row)


async def live_codes(
    conn: Conn, tenant_id: uuid.UUID, limit: int, cursor: str | None
) -> LiveCodeList:
    p = _Params()
    where = [f"tenant_id = {p(tenant_id)}"]
    if cursor:
        after = decode_cursor(cursor, _Page)
        where.append(f"(created_at, live_code_id) < ({p(after.at)}, {p(after.id)})")
    rows = await conn.fetch(
        f"SELECT * FROM live_codes WHERE {' AND '.join(where)} "
        f"ORDER BY created_at DESC, live_code_id DESC LIMIT {p(limit + 1)}",
        *p.values,
    )
    page = [await _live_out(conn, r) for r in rows[:limit]]
    more = len(rows) > limit
    return LiveCodeList(
        page, encode_cursor(_Page(page[-1].created_at, page[-1].live_code_id)) if more else None
    )
