"""The scan decision: check a code, count the scan, reserve a seat, hand out a join token.

Every limit is one conditional statement (`… WHERE used < max RETURNING`), never a read
followed by a write, so caps hold exactly however many replicas race. The scan counter,
the seat and the token commit together or not at all; a rejection rolls them back and is
recorded as its own event.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from services.redeemer.api.schemas import GroupSummary, Membership, ScanOut
from shared import codetoken
from shared.crypto.signing import b64url
from shared.events.redeemer import ScanAccepted, ScanFoundMember, ScanRejected
from shared.http.problems import Problem
from shared.ids import uuid7
from shared.store.unit_of_work import Outbox


@dataclass(frozen=True)
class CodeRow:
    code_id: uuid.UUID
    group_id: uuid.UUID
    tenant_id: uuid.UUID


_KEY = "SELECT tenant_id, public_key FROM signing_keys WHERE key_id = $1"
_CODE = "SELECT code_id, group_id, tenant_id FROM codes WHERE code_id = $1"
_COUNT_SCAN = """
UPDATE codes SET scans_used = scans_used + 1
WHERE code_id = $1 AND status = 'active' AND (expires_at IS NULL OR expires_at > now())
  AND (max_scans IS NULL OR scans_used < max_scans)
RETURNING scans_used
"""
_WHY_NOT = """
SELECT expires_at IS NOT NULL AND expires_at <= now() AS expired, status FROM codes
WHERE code_id = $1
"""
_HELD = """
SELECT token_hash, scan_id FROM join_tokens WHERE group_id = $1 AND user_id = $2 FOR UPDATE
"""
_REISSUE = """
UPDATE join_tokens SET token_hash = $3, scan_id = $4, code_id = $5, device_id = $6,
       expires_at = now() + make_interval(secs => $7)
WHERE group_id = $1 AND user_id = $2
RETURNING expires_at
"""
_RESERVE = """
UPDATE groups SET reserved = reserved + 1
WHERE group_id = $1 AND members + reserved < max_members
RETURNING group_id
"""
_ISSUE = """
INSERT INTO join_tokens (token_hash, scan_id, tenant_id, group_id, code_id, user_id, device_id,
                         expires_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now() + make_interval(secs => $8))
RETURNING expires_at
"""
_GROUP = "SELECT group_id, name, members, max_members FROM groups WHERE group_id = $1"


class _Rejected(Exception):
    def __init__(self, reason: str) -> None:
        self.reason = reason


def token_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def group_summary(row: asyncpg.Record | None) -> GroupSummary:
    assert row is not None  # a code's group is projected before the code
    return GroupSummary(row["group_id"], row["name"], row["members"], row["max_members"])


class Scanner:
    def __init__(
        self,
        outbox: Outbox,
        *,
        token_ttl: int,
        propagated: Callable[[], bool],
        propagation_wait: float = 3.0,
    ) -> None:
        self.outbox = outbox
        self.pool = outbox.pool
        self.token_ttl = token_ttl
        self.propagated = propagated
        self.propagation_wait = propagation_wait

    async def scan(
        self, tenant_id: uuid.UUID, payload: str, user_id: str, device_id: str | None
    ) -> ScanOut:
        scan_id = uuid7()
        code = await self._verified_code(tenant_id, payload, scan_id, user_id)
        async with self.pool.acquire() as conn:
            member = await conn.fetchrow(
                "SELECT joined_at FROM memberships WHERE group_id = $1 AND user_id = $2",
                code.group_id,
                user_id,
            )
        if member is not None:
            return await self._found_member(code, scan_id, user_id, member["joined_at"])
        for attempt in range(3):
            try:
                return await self._accept(code, scan_id, user_id, device_id)
            except _Rejected as rejected:
                await self._reject(tenant_id, scan_id, code, user_id, rejected.reason)
                raise Problem(rejected.reason, _DETAIL[rejected.reason]) from None
            except asyncpg.UniqueViolationError:
                # The same person scanned twice at once; the second pass reissues instead.
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    async def _verified_code(
        self, tenant_id: uuid.UUID, payload: str, scan_id: uuid.UUID, user_id: str
    ) -> CodeRow:
        async def invalid(detail: str) -> Problem:
            await self._reject(tenant_id, scan_id, None, user_id, "invalid_code")
            return Problem("invalid_code", detail)

        try:
            token = codetoken.parse(codetoken.token_from_payload(payload))
        except codetoken.InvalidToken as exc:
            raise await invalid(f"this is not a qunma code: {exc}") from None
        key = await self._poll(_KEY, token.key_id, give_up=self.propagated)
        if key is None:
            raise await invalid("the code is signed by a key this service does not know")
        if not token.verify(key["public_key"]):
            raise await invalid("the code's signature does not verify")
        if key["tenant_id"] != tenant_id:
            # Another tenant's code is answered exactly as a code that does not exist.
            raise await invalid("no such code")
        # The signature proves the issuer made this code: if it is not here yet, it is on
        # its way through the log, so wait for it rather than call it invalid.
        row = await self._poll(_CODE, token.code_id, give_up=lambda: False)
        if row is None:
            raise Problem(
                "code_not_propagated",
                "this code was issued moments ago and is not known here yet; retry in a second",
                headers={"Retry-After": "1"},
            )
        return CodeRow(row["code_id"], row["group_id"], row["tenant_id"])

    async def _poll(
        self, query: str, arg: object, *, give_up: Callable[[], bool]
    ) -> asyncpg.Record | None:
        """A projected row; one issued a moment ago may still be on its way from the issuer."""
        deadline = asyncio.get_running_loop().time() + self.propagation_wait
        delay = 0.01
        while True:
            async with self.pool.acquire() as conn:
                row = await conn.fetchrow(query, arg)
            if row is not None or give_up() or asyncio.get_running_loop().time() >= deadline:
                return row
            await asyncio.sleep(delay)
            delay = min(delay * 2, 0.2)

    async def _accept(
        self, code: CodeRow, scan_id: uuid.UUID, user_id: str, device_id: str | None
    ) -> ScanOut:
        join_token = b64url(secrets.token_bytes(32))
        digest = token_hash(join_token)
        async with self.outbox.unit() as uow:
            conn = uow.conn
            if await conn.fetchval(_COUNT_SCAN, code.code_id) is None:
                why = await conn.fetchrow(_WHY_NOT, code.code_id)
                assert why is not None  # codes are never deleted
                if why["expired"]:
                    raise _Rejected("code_expired")
                raise _Rejected(
                    "code_revoked" if why["status"] == "revoked" else "scan_limit_reached"
                )
            held = await conn.fetchrow(_HELD, code.group_id, user_id)
            if held is not None:
                # The same person's unredeemed token is replaced; its seat passes to this one.
                expires_at = await conn.fetchval(
                    _REISSUE,
                    code.group_id,
                    user_id,
                    digest,
                    scan_id,
                    code.code_id,
                    device_id,
                    self.token_ttl,
                )
                await conn.execute(
                    "INSERT INTO spent_tokens (token_hash, scan_id, tenant_id, group_id, user_id, "
                    "outcome) VALUES ($1, $2, $3, $4, $5, 'superseded')",
                    held["token_hash"],
                    held["scan_id"],
                    code.tenant_id,
                    code.group_id,
                    user_id,
                )
            else:
                if await conn.fetchval(_RESERVE, code.group_id) is None:
                    raise _Rejected("group_full")
                expires_at = await conn.fetchval(
                    _ISSUE,
                    digest,
                    scan_id,
                    code.tenant_id,
                    code.group_id,
                    code.code_id,
                    user_id,
                    device_id,
                    self.token_ttl,
                )
            group = await conn.fetchrow(_GROUP, code.group_id)
            uow.record(
                ScanAccepted(
                    scan_id=scan_id,
                    code_id=code.code_id,
                    group_id=code.group_id,
                    user_id=user_id,
                    device_id=device_id,
                    token_expires_at=expires_at,
                    replaces_scan_id=held["scan_id"] if held else None,
                ),
                stream_id=f"scan:{scan_id}",
                version=1,
                tenant_id=code.tenant_id,
                key=str(code.group_id),
            )
        return ScanOut(
            status="token", group=group_summary(group), join_token=join_token, expires_at=expires_at
        )

    async def _found_member(
        self, code: CodeRow, scan_id: uuid.UUID, user_id: str, joined_at: datetime
    ) -> ScanOut:
        async with self.outbox.unit() as uow:
            group = await uow.conn.fetchrow(_GROUP, code.group_id)
            uow.record(
                ScanFoundMember(
                    scan_id=scan_id, code_id=code.code_id, group_id=code.group_id, user_id=user_id
                ),
                stream_id=f"scan:{scan_id}",
                version=1,
                tenant_id=code.tenant_id,
                key=str(code.group_id),
            )
        return ScanOut(
            status="member",
            group=group_summary(group),
            membership=Membership(code.group_id, user_id, joined_at),
        )

    async def _reject(
        self,
        tenant_id: uuid.UUID,
        scan_id: uuid.UUID,
        code: CodeRow | None,
        user_id: str,
        reason: str,
    ) -> None:
        async with self.outbox.unit() as uow:
            uow.record(
                ScanRejected(
                    scan_id=scan_id,
                    code_id=code.code_id if code else None,
                    group_id=code.group_id if code else None,
                    user_id=user_id,
                    reason=reason,
                ),
                stream_id=f"scan:{scan_id}",
                version=1,
                tenant_id=tenant_id,
                key=str(code.group_id) if code else str(tenant_id),
            )


_DETAIL = {
    "code_expired": "this code has expired; ask for a new one",
    "code_revoked": "this code was revoked by the group's owner",
    "scan_limit_reached": "this code has been scanned as many times as it allows",
    "group_full": "the group has no free seat",
}
