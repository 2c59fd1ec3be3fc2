"""The issuer's read model: each event's effect on the rows the API reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

import msgspec

from shared.dbtypes import Conn
from shared.events.issuer import (
    AMENDABLE,
    ApiKeyCreated,
    ApiKeyRevoked,
    CodeAmended,
    CodeIssued,
    CodeRevoked,
    CodeSuperseded,
    GroupCreated,
    LiveCodeConfigured,
    LiveCodeRevoked,
    SigningKeyAdded,
    SigningKeyRetired,
    TenantCreated,
    TenantSettingsChanged,
)
from shared.store.eventstore import Pending

Apply = Callable[[Conn, Any, Pending, datetime], Awaitable[None]]


async def _tenant_created(conn: Conn, e: TenantCreated, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO tenants (tenant_id, name, created_at) VALUES ($1, $2, $3)",
        e.tenant_id,
        e.name,
        at,
    )


async def _tenant_settings_changed(
    conn: Conn, e: TenantSettingsChanged, p: Pending, at: datetime
) -> None:
    await conn.execute(
        "UPDATE tenants SET fallback_domains = $2 WHERE tenant_id = $1",
        p.tenant_id,
        e.fallback_domains,
    )


async def _api_key_created(conn: Conn, e: ApiKeyCreated, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO api_keys (key_id, tenant_id, name, key_hash, scopes, created_at, "
        "rate_per_second, rate_burst) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        e.key_id,
        p.tenant_id,
        e.name,
        e.key_hash,
        e.scopes,
        at,
        e.rate_limit.per_second if e.rate_limit else None,
        e.rate_limit.burst if e.rate_limit else None,
    )


async def _api_key_revoked(conn: Conn, e: ApiKeyRevoked, p: Pending, at: datetime) -> None:
    await conn.execute("UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1", e.key_id, at)


async def _signing_key_added(conn: Conn, e: SigningKeyAdded, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (key_id, tenant_id, algorithm, public_key, created_at, active) "
        "VALUES ($1, $2, $3, $4, $5, true)",
        e.key_id,
        p.tenant_id,
        e.algorithm,
        e.public_key,
        at,
    )


async def _signing_key_retired(conn: Conn, e: SigningKeyRetired, p: Pending, at: datetime) -> None:
    await conn.execute(
        "UPDATE signing_keys SET active = false, retired_at = $2 WHERE key_id = $1", e.key_id, at
    )


async def _group_created(conn: Conn, e: GroupCreated, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO groups (group_id, tenant_id, name, max_members, created_at, profile, "
        "timezone, live_code_id, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        e.group_id,
        p.tenant_id,
        e.name,
        e.max_members,
        at,
        e.profile,
        e.timezone,
        e.live_code_id,
        p.stream_version,
    )


async def _code_issued(conn: Conn, e: CodeIssued, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO codes (code_id, tenant_id, group_id, key_id, payload, issued_at, expires_at, "
        "max_scans, version, not_before, daily_scan_limit, verification_mode, ip_allowlist, "
        "geofence, bind_device, fallback_url, channel, phone_last4_count) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)",
        e.code_id,
        p.tenant_id,
        e.group_id,
        e.key_id,
        e.payload,
        e.issued_at,
        e.expires_at,
        e.max_scans,
        p.stream_version,
        e.not_before,
        e.daily_scan_limit,
        e.verification.mode,
        e.ip_allowlist,
        msgspec.json.encode(e.geofence).decode() if e.geofence else None,
        e.bind_device,
        e.fallback_url,
        e.channel,
        len(e.verification.phone_last4) if e.verification.phone_last4 is not None else None,
    )


async def _code_revoked(conn: Conn, e: CodeRevoked, p: Pending, at: datetime) -> None:
    await conn.execute(
        "UPDATE codes SET revoked_at = $2, revoke_reason = $3, version = $4 WHERE code_id = $1",
        e.code_id,
        at,
        e.reason,
        p.stream_version,
    )


async def _code_superseded(conn: Conn, e: CodeSuperseded, p: Pending, at: datetime) -> None:
    await conn.execute(
        "UPDATE codes SET superseded_at = $2, superseded_by = $3, version = $4 WHERE code_id = $1",
        e.code_id,
        at,
        e.by_code_id,
        p.stream_version,
    )


async def _code_amended(conn: Conn, e: CodeAmended, p: Pending, at: datetime) -> None:
    columns = [c for c in e.changed if c in AMENDABLE]
    sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=3))
    await conn.execute(
        f"UPDATE codes SET version = $2{', ' + sets if sets else ''} WHERE code_id = $1",
        e.code_id,
        p.stream_version,
        *(getattr(e, c) for c in columns),
    )


async def _live_code_configured(
    conn: Conn, e: LiveCodeConfigured, p: Pending, at: datetime
) -> None:
    await conn.execute(
        "INSERT INTO live_codes (live_code_id, tenant_id, name, config, key_id, payload, channel, "
        "created_at, version) VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7, $8, $9) "
        "ON CONFLICT (live_code_id) DO UPDATE SET name = excluded.name, "
        "config = excluded.config, channel = excluded.channel, version = excluded.version",
        e.live_code_id,
        p.tenant_id,
        e.name,
        msgspec.json.encode(e).decode(),
        e.key_id,
        e.payload,
        e.channel,
        at,
        p.stream_version,
    )


async def _live_code_revoked(conn: Conn, e: LiveCodeRevoked, p: Pending, at: datetime) -> None:
    await conn.execute(
        "UPDATE live_codes SET revoked_at = $2, revoke_reason = $3, version = $4 "
        "WHERE live_code_id = $1",
        e.live_code_id,
        at,
        e.reason,
        p.stream_version,
    )


_APPLY: dict[type, Apply] = {
    TenantCreated: _tenant_created,
    TenantSettingsChanged: _tenant_settings_changed,
    ApiKeyCreated: _api_key_created,
    ApiKeyRevoked: _api_key_revoked,
    SigningKeyAdded: _signing_key_added,
    SigningKeyRetired: _signing_key_retired,
    GroupCreated: _group_created,
    CodeIssued: _code_issued,
    CodeRevoked: _code_revoked,
    CodeSuperseded: _code_superseded,
    CodeAmended: _code_amended,
    LiveCodeConfigured: _live_code_configured,
    LiveCodeRevoked: _live_code_revoked,
}


async def project(conn: Conn, pending: Pending, at: datetime) -> None:
    apply = _APPLY.get(type(pending.event))
    if apply is not None:
        await apply(conn, pending.event, pending, at)
