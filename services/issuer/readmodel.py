"""The issuer's read model: each event's effect on the rows the API reads."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from shared.dbtypes import Conn
from shared.events.issuer import (
    ApiKeyCreated,
    ApiKeyRevoked,
    CodeIssued,
    CodeRevoked,
    GroupCreated,
    SigningKeyAdded,
    TenantCreated,
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


async def _api_key_created(conn: Conn, e: ApiKeyCreated, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO api_keys (key_id, tenant_id, name, key_hash, scopes, created_at) "
        "VALUES ($1, $2, $3, $4, $5, $6)",
        e.key_id,
        p.tenant_id,
        e.name,
        e.key_hash,
        e.scopes,
        at,
    )


async def _api_key_revoked(conn: Conn, e: ApiKeyRevoked, p: Pending, at: datetime) -> None:
    await conn.execute("UPDATE api_keys SET revoked_at = $2 WHERE key_id = $1", e.key_id, at)


async def _signing_key_added(conn: Conn, e: SigningKeyAdded, p: Pending, at: datetime) -> None:
    await conn.execute(
        "UPDATE signing_keys SET active = false WHERE tenant_id = $1 AND active", p.tenant_id
    )
    await conn.execute(
        "INSERT INTO signing_keys (key_id, tenant_id, algorithm, public_key, created_at, active) "
        "VALUES ($1, $2, $3, $4, $5, true)",
        e.key_id,
        p.tenant_id,
        e.algorithm,
        e.public_key,
        at,
    )


async def _group_created(conn: Conn, e: GroupCreated, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO groups (group_id, tenant_id, name, max_members, created_at) "
        "VALUES ($1, $2, $3, $4, $5)",
        e.group_id,
        p.tenant_id,
        e.name,
        e.max_members,
        at,
    )


async def _code_issued(conn: Conn, e: CodeIssued, p: Pending, at: datetime) -> None:
    await conn.execute(
        "INSERT INTO codes (code_id, tenant_id, group_id, key_id, payload, issued_at, expires_at, "
        "max_scans) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        e.code_id,
        p.tenant_id,
        e.group_id,
        e.key_id,
        e.payload,
        e.issued_at,
        e.expires_at,
        e.max_scans,
    )


async def _code_revoked(conn: Conn, e: CodeRevoked, p: Pending, at: datetime) -> None:
    await conn.execute(
        "UPDATE codes SET revoked_at = $2, revoke_reason = $3 WHERE code_id = $1",
        e.code_id,
        at,
        e.reason,
    )


_APPLY: dict[type, Apply] = {
    TenantCreated: _tenant_created,
    ApiKeyCreated: _api_key_created,
    ApiKeyRevoked: _api_key_revoked,
    SigningKeyAdded: _signing_key_added,
    GroupCreated: _group_created,
    CodeIssued: _code_issued,
    CodeRevoked: _code_revoked,
}


async def project(conn: Conn, pending: Pending, at: datetime) -> None:
    apply = _APPLY.get(type(pending.event))
    if apply is not None:
        await apply(conn, pending.event, pending, at)
