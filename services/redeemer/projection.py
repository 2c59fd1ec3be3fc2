"""What the redeemer learns from the issuer's log, applied inside the follower's transaction."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from shared.dbtypes import Conn
from shared.events import Envelope, Event
from shared.events.issuer import (
    ApiKeyCreated,
    ApiKeyRevoked,
    CodeIssued,
    CodeRevoked,
    GroupCreated,
    SigningKeyAdded,
)

Apply = Callable[[Conn, Any, Envelope], Awaitable[None]]


async def _api_key_created(conn: Conn, e: ApiKeyCreated, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO api_keys (key_id, tenant_id, key_hash, scopes) VALUES ($1, $2, $3, $4)",
        e.key_id,
        env.tenant_id,
        e.key_hash,
        e.scopes,
    )


async def _api_key_revoked(conn: Conn, e: ApiKeyRevoked, env: Envelope) -> None:
    await conn.execute("UPDATE api_keys SET revoked = true WHERE key_id = $1", e.key_id)


async def _signing_key_added(conn: Conn, e: SigningKeyAdded, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO signing_keys (key_id, tenant_id, public_key) VALUES ($1, $2, $3)",
        e.key_id,
        env.tenant_id,
        e.public_key,
    )


async def _group_created(conn: Conn, e: GroupCreated, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO groups (group_id, tenant_id, name, max_members) VALUES ($1, $2, $3, $4)",
        e.group_id,
        env.tenant_id,
        e.name,
        e.max_members,
    )


async def _code_issued(conn: Conn, e: CodeIssued, env: Envelope) -> None:
    await conn.execute(
        "INSERT INTO codes (code_id, tenant_id, group_id, key_id, issued_at, expires_at, "
        "max_scans) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        e.code_id,
        env.tenant_id,
        e.group_id,
        e.key_id,
        e.issued_at,
        e.expires_at,
        e.max_scans,
    )


async def _code_revoked(conn: Conn, e: CodeRevoked, env: Envelope) -> None:
    await conn.execute(
        "UPDATE codes SET status = 'revoked', revoked_at = $2, revoke_reason = $3 "
        "WHERE code_id = $1",
        e.code_id,
        env.occurred_at,
        e.reason,
    )


_APPLY: dict[type, Apply] = {
    ApiKeyCreated: _api_key_created,
    ApiKeyRevoked: _api_key_revoked,
    SigningKeyAdded: _signing_key_added,
    GroupCreated: _group_created,
    CodeIssued: _code_issued,
    CodeRevoked: _code_revoked,
}


class IssuerProjection:
    """The follower's projection of `qunma.issuer.events`."""

    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        apply = _APPLY.get(type(event))
        if apply is not None:
            await apply(conn, event, envelope)
