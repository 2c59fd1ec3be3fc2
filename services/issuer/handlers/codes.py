"""Issuing, amending and revoking codes, within the bounds of the group's profile."""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from msgspec import UNSET

from services.issuer.commands import AmendCode, IssueCode, RevokeCode
from services.issuer.domain import code as codes
from services.issuer.domain import group as groups
from services.issuer.domain.fallback import check_fallback_url
from services.issuer.handlers.deps import Deps, check_fallback, load_code, load_group
from services.issuer.inputs import IssueCodeIn, VerificationIn
from shared import codetoken
from shared.crypto.signing import SigningKey
from shared.events import Event
from shared.events.issuer import CodeIssued, Geofence, Verification
from shared.ids import uuid7
from shared.refusals import Reason, Refusal
from shared.rules.invite_codes import invite_code_hash, new_invite_code
from shared.rules.profiles import Profile, profile
from shared.rules.verification import (
    LARGE_GROUP,
    VERIFIED_JOINS_NEEDED,
    large_group_rule_applies,
    large_group_waits,
)
from shared.store.eventstore import load_stream, recorded
from shared.store.unit_of_work import UnitOfWork

YEAR = timedelta(days=365)


def _whole_seconds(moment: datetime) -> datetime:
    # The token carries Unix seconds; the events must say the same instant.
    return moment.astimezone(UTC).replace(microsecond=0)


def _cidrs(entries: list[str]) -> list[str]:
    found: list[str] = []
    for entry in entries:
        try:
            network = str(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            raise Refusal(
                Reason.INVALID_REQUEST, f"ip_allowlist: {entry!r} is not a CIDR"
            ) from None
        if network not in found:
            found.append(network)
    return found


def _verification(
    rules: Profile, given: VerificationIn, code_id: uuid.UUID, secret: bytes
) -> tuple[Verification, str | None]:
    mode = rules.mode(None if given.mode is UNSET else given.mode)
    if given.invite_code is not UNSET and mode != "invite_code":
        raise Refusal(Reason.INVALID_REQUEST, "verification.invite_code goes with mode invite_code")
    if given.phone_last4 is not UNSET and mode != "phone_last4":
        raise Refusal(Reason.INVALID_REQUEST, "verification.phone_last4 goes with mode phone_last4")
    invite_code = None
    if mode == "invite_code":
        invite_code = given.invite_code if given.invite_code is not UNSET else new_invite_code()
    return Verification(
        mode=mode,
        invite_code_hash=invite_code_hash(secret, code_id, invite_code) if invite_code else None,
        phone_last4=sorted(set(given.phone_last4)) if given.phone_last4 is not UNSET else None,
    ), invite_code


# Everything issuing a code into a group reads, in one statement (one round trip inside the
# command's transaction instead of five): the group's events, its counters, the tenant's
# fallback domains and active signing key. It also locks the group's row: one issuer at a
# time per group, so that a rotation sees every code issued before it.
_ISSUE_CONTEXT = """
SELECT e.stream_version, e.type, e.schema, e.data, e.tenant_id, e.occurred_at,
       g.members, g.verified_joins, t.fallback_domains, k.key_id, s.sealed
FROM groups g
JOIN tenants t ON t.tenant_id = g.tenant_id
JOIN events e ON e.stream_id = $3
LEFT JOIN signing_keys k ON k.tenant_id = g.tenant_id AND k.active
LEFT JOIN signing_key_secrets s ON s.key_id = k.key_id
WHERE g.group_id = $1 AND g.tenant_id = $2
ORDER BY e.stream_version
FOR UPDATE OF g
"""


@dataclass(frozen=True)
class _IssueContext:
    group: groups.Group
    members: int
    verified_joins: int
    fallback_domains: list[str] | None
    key: SigningKey


async def _issue_context(
    uow: UnitOfWork, deps: Deps, tenant_id: uuid.UUID, group_id: uuid.UUID
) -> _IssueContext:
    rows = await uow.conn.fetch(_ISSUE_CONTEXT, group_id, tenant_id, groups.stream(group_id))
    group = groups.fold([recorded(r) for r in rows])
    if group is None or group.tenant_id != tenant_id:
        raise Refusal(Reason.NOT_FOUND, f"no group {group_id}")
    first = rows[0]
    if first["key_id"] is None:
        raise LookupError(f"tenant {tenant_id} has no active signing key")
    return _IssueContext(
        group=group,
        members=first["members"],
        verified_joins=first["verified_joins"],
        fallback_domains=first["fallback_domains"],
        key=deps.signing_keys.opened(first["key_id"], bytes(first["sealed"])),
    )


def _check_large_personal_group(context: _IssueContext, profile_name: str, mode: str) -> None:
    if large_group_waits(profile_name, mode, context.members, context.verified_joins):
        raise Refusal(
            Reason.VERIFIED_MEMBERS_REQUIRED,
            f"a personal group of more than {LARGE_GROUP} members accepts codes with "
            f"verification 'none' only after {VERIFIED_JOINS_NEEDED} members joined through a "
            f"verified mode (it has {context.verified_joins}); issue a code with a verified mode",
        )


def _plan(opts: IssueCodeIn, rules: Profile, now: datetime) -> dict[str, object]:
    """The code's lifetime and caps: the profile's defaults, or the request within bounds."""
    ttl = rules.ttl(
        None if opts.ttl_seconds is UNSET else opts.ttl_seconds, given=opts.ttl_seconds is not UNSET
    )
    not_before = None
    if opts.not_before is not UNSET:
        not_before = _whole_seconds(opts.not_before)
        if not_before > now + YEAR:
            raise Refusal(Reason.INVALID_REQUEST, "not_before is more than a year away")
    start = max(now, not_before) if not_before else now
    return {
        "not_before": not_before if not_before and not_before > now else None,
        "expires_at": start + ttl if ttl is not None else None,
        "max_scans": rules.max_scans(
            None if opts.max_scans is UNSET else opts.max_scans, given=opts.max_scans is not UNSET
        ),
        "daily_scan_limit": rules.daily_scan_limit(
            None if opts.daily_scan_limit is UNSET else opts.daily_scan_limit,
            given=opts.daily_scan_limit is not UNSET,
        ),
    }


async def issue_code(cmd: IssueCode, deps: Deps) -> uuid.UUID:
    opts = cmd.options

    async def decide(uow: UnitOfWork) -> uuid.UUID:
        context = await _issue_context(uow, deps, cmd.tenant_id, cmd.group_id)
        group, key = context.group, context.key
        rules = profile(group.profile)
        now = _whole_seconds(uow.now)
        plan = _plan(opts, rules, now)
        if opts.fallback_url is not None:
            check_fallback_url(opts.fallback_url, context.fallback_domains)
        code_id = uuid7()
        given = VerificationIn() if opts.verification is UNSET else opts.verification
        verification, invite_code = _verification(rules, given, code_id, deps.invite_secret)
        rotate = rules.rotate_default if opts.rotate is UNSET else opts.rotate
        if large_group_rule_applies(rules.name, verification.mode):
            _check_large_personal_group(context, rules.name, verification.mode)
        expires_at = plan["expires_at"]
        assert expires_at is None or isinstance(expires_at, datetime)
        token = codetoken.issue(code_id, expires_at, key)
        event = CodeIssued(
            code_id=code_id,
            group_id=group.group_id,
            key_id=key.key_id,
            payload=codetoken.payload_url(deps.public_url, token),
            issued_at=now,
            verification=verification,
            ip_allowlist=_cidrs(opts.ip_allowlist),
            geofence=Geofence(opts.geofence.lat, opts.geofence.lon, opts.geofence.radius_m)
            if opts.geofence
            else None,
            bind_device=opts.bind_device,
            fallback_url=opts.fallback_url,
            channel=opts.channel,
            **plan,  # type: ignore[arg-type]
        )
        uow.record(
            event,
            stream_id=codes.stream(code_id),
            version=1,
            tenant_id=cmd.tenant_id,
            key=str(group.group_id),
        )
        if rotate:
            await _supersede_others(uow, cmd.tenant_id, group.group_id, code_id, now)
        await uow.flush()
        if invite_code:
            await uow.conn.execute(
                "UPDATE codes SET invite_code = $2 WHERE code_id = $1", code_id, invite_code
            )
        return code_id

    return await deps.outbox.run(decide)


async def _supersede_others(
    uow: UnitOfWork, tenant_id: uuid.UUID, group_id: uuid.UUID, by: uuid.UUID, now: datetime
) -> None:
    rows = await uow.conn.fetch(
        "SELECT code_id FROM codes WHERE group_id = $1 AND revoked_at IS NULL "
        "AND superseded_at IS NULL AND (expires_at IS NULL OR expires_at > $2)",
        group_id,
        now,
    )
    for row in rows:
        old = codes.fold(await load_stream(uow.conn, codes.stream(row["code_id"])))
        assert old is not None
        _record(uow, old, codes.supersede(old, by, now))


def _record(uow: UnitOfWork, code: codes.Code, events: list[Event]) -> codes.Code:
    for event in events:
        code = codes.mutate(
            code,
            uow.record(
                event,
                stream_id=codes.stream(code.code_id),
                version=code.version + 1,
                tenant_id=code.tenant_id,
                key=str(code.group_id),
            ),
        )
    return code


async def amend_code(cmd: AmendCode, deps: Deps) -> uuid.UUID:
    change = cmd.changes

    async def decide(uow: UnitOfWork) -> uuid.UUID:
        code = await load_code(uow, cmd.tenant_id, cmd.code_id)
        rules = profile((await load_group(uow, cmd.tenant_id, code.group_id)).profile)
        now = _whole_seconds(uow.now)
        if code.status(now) in ("revoked", "superseded"):
            raise Refusal(Reason.CODE_NOT_CHANGEABLE, f"the code is {code.status(now)}")
        changes: dict[str, object] = {}
        if change.expires_at is not UNSET:
            changes["expires_at"] = _new_expiry(rules, code, change.expires_at, now)
        if change.max_scans is not UNSET:
            changes["max_scans"] = rules.max_scans(change.max_scans, given=True)
        if change.daily_scan_limit is not UNSET:
            changes["daily_scan_limit"] = rules.daily_scan_limit(
                change.daily_scan_limit, given=True
            )
        if change.fallback_url is not UNSET:
            await check_fallback(uow, cmd.tenant_id, change.fallback_url)
            changes["fallback_url"] = change.fallback_url
        if change.channel is not UNSET:
            changes["channel"] = change.channel
        _record(uow, code, codes.amend(code, changes))
        return code.code_id

    return await deps.outbox.run(decide)


def _new_expiry(
    rules: Profile, code: codes.Code, wanted: datetime | None, now: datetime
) -> datetime | None:
    if not rules.extendable:
        raise rules.outside("expires_at", "the lifetime of its codes cannot change")
    if wanted is None:
        if not rules.permanent_allowed:
            raise rules.outside("expires_at", "codes cannot be permanent")
        return None
    wanted = _whole_seconds(wanted)
    if wanted <= now:
        raise Refusal(
            Reason.INVALID_REQUEST, "expires_at must be in the future; to end a code, revoke it"
        )
    if rules.ttl_max is not None and wanted - (code.not_before or code.issued_at) > rules.ttl_max:
        raise rules.outside("expires_at", f"at most {rules.ttl_max} after the code starts")
    return wanted


async def revoke_code(cmd: RevokeCode, deps: Deps) -> uuid.UUID:
    async def decide(uow: UnitOfWork) -> uuid.UUID:
        code = await load_code(uow, cmd.tenant_id, cmd.code_id)
        _record(uow, code, codes.revoke(code, cmd.reason))
        return code.code_id

    return await deps.outbox.run(decide)
