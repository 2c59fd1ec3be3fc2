"""What the redeemer learns from the issuer's log, applied inside the follower's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import msgspec

from shared.dbtypes import Conn
from shared.events import Envelope, Event
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
)

Apply = Callable[[Conn, Any, Envelope], Awaitable[None]]


async def _api_key_created(conn: Conn, e: ApiKeyCreated, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO api_keys (key_id, tenant_id, key_hash, scopes, rate_per_second, rate_burst) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        e.key_id,
        env.tenant_id,
        e.key_hash,
        e.scopes,
        e.rate_limit.per_second if e.rate_limit else None,
        e.rate_limit.burst if e.rate_limit else None,
    )


async def _api_key_revoked(conn: Conn, e: ApiKeyRevoked, env: Envelope) -> None:
    await conn.execute("UPDATE api_keys SET revoked = true WHERE key_id = $1", e.key_id)


async def _signing_key_added(conn: Conn, e: SigningKeyAdded, env: Envelope) -> None:
    # Retired keys stay: a code they signed is valid until the code itself ends.
    await conn.execute(
        "INSERT INTO signing_keys (key_id, tenant_id, public_key) VALUES ($1, $2, $3)",
        e.key_id,
        env.tenant_id,
        e.public_key,
    )


async def _group_created(conn: Conn, e: GroupCreated, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO groups (group_id, tenant_id, name, max_members, profile, timezone) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        e.group_id,
        env.tenant_id,
        e.name,
        e.max_members,
        e.profile,
        e.timezone,
    )


async def _code_issued(conn: Conn, e: CodeIssued, env: Envelope) -> None:
    fence = e.geofence
    await conn.execute(
        "INSERT INTO codes (code_id, tenant_id, group_id, key_id, issued_at, expires_at, "
        "max_scans, not_before, daily_scan_limit, verification_mode, invite_code_hash, "
        "phone_last4, ip_allowlist, geo_lat, geo_lon, geo_radius_m, bind_device, fallback_url, "
        "channel) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::cidr[], "
        "$14, $15, $16, $17, $18, $19)",
        e.code_id,
        env.tenant_id,
        e.group_id,
        e.key_id,
        e.issued_at,
        e.expires_at,
        e.max_scans,
        e.not_before,
        e.daily_scan_limit,
        e.verification.mode,
        e.verification.invite_code_hash,
        e.verification.phone_last4,
        e.ip_allowlist,
        fence.lat if fence else None,
        fence.lon if fence else None,
        fence.radius_m if fence else None,
        e.bind_device,
        e.fallback_url,
        e.channel,
    )


async def _code_revoked(conn: Conn, e: CodeRevoked, env: Envelope) -> None:
    await conn.execute(
        "UPDATE codes SET status = 'revoked', revoked_at = $2, revoke_reason = $3 "
        "WHERE code_id = $1",
        e.code_id,
        env.occurred_at,
        e.reason,
    )


async def _code_superseded(conn: Conn, e: CodeSuperseded, env: Envelope) -> None:
    await conn.execute(
        "UPDATE codes SET status = 'superseded', superseded_at = $2 "
        "WHERE code_id = $1 AND status = 'active'",
        e.code_id,
        env.occurred_at,
    )


async def _code_amended(conn: Conn, e: CodeAmended, env: Envelope) -> None:
    columns = [c for c in e.changed if c in AMENDABLE]
    if columns:
        sets = ", ".join(f"{c} = ${i}" for i, c in enumerate(columns, start=2))
        await conn.execute(
            f"UPDATE codes SET {sets} WHERE code_id = $1",
            e.code_id,
            *(getattr(e, c) for c in columns),
        )


async def _live_code_configured(conn: Conn, e: LiveCodeConfigured, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO live_codes (live_code_id, tenant_id, key_id, name, group_ids, strategy, "
        "switch_at, rules, max_groups, fallback_url, channel) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7, $8::jsonb, $9, $10, $11) "
        "ON CONFLICT (live_code_id) DO UPDATE SET name = excluded.name, "
        "group_ids = excluded.group_ids, strategy = excluded.strategy, "
        "switch_at = excluded.switch_at, rules = excluded.rules, "
        "max_groups = excluded.max_groups, fallback_url = excluded.fallback_url, "
        "channel = excluded.channel",
        e.live_code_id,
        env.tenant_id,
        e.key_id,
        e.name,
        e.group_ids,
        e.strategy,
        e.switch_at,
        msgspec.json.encode(e.rules).decode(),
        e.auto_create.max_groups if e.auto_create else None,
        e.fallback_url,
        e.channel,
    )


async def _live_code_revoked(conn: Conn, e: LiveCodeRevoked, env: Envelope) -> None:
    await conn.execute(
        "UPDATE live_codes SET status = 'revoked', revoked_at = $2 WHERE live_code_id = $1",
        e.live_code_id,
        env.occurred_at,
    )


_APPLY: dict[type, Apply] = {
    ApiKeyCreated: _api_key_created,
    ApiKeyRevoked: _api_key_revoked,
    SigningKeyAdded: _signing_key_added,
    GroupCreated: _group_created,
    CodeIssued: _code_issued,
    CodeRevoked: _code_revoked,
    CodeSuperseded: _code_superseded,
    CodeAmended: _code_amended,
    LiveCodeConfigured: _live_code_configured,
    LiveCodeRevoked: _live_code_revoked,
}


class IssuerProjection:
    """The follower's projection of `qunma.issuer.events`."""

    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        apply = _APPLY.get(type(event))
        if apply is not None:
            await apply(conn, event, envelope)
