"""Live codes (活码): create, reconfigure, revoke, and open the next group when all are full."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

import asyncpg
from msgspec import UNSET

from services.issuer.commands import ChangeLiveCode, CreateLiveCode, RevokeLiveCode
from services.issuer.domain import group as groups
from services.issuer.domain import livecode as livecodes
from services.issuer.handlers.deps import Deps, check_fallback, load_live_code
from services.issuer.inputs import AutoCreateIn, RuleIn
from shared import codetoken
from shared.events.issuer import (
    AutoCreate,
    GroupCreated,
    LiveCodeConfigured,
    LiveCodeRevoked,
    RouteRule,
)
from shared.ids import uuid7
from shared.refusals import Reason, Refusal
from shared.rules.profiles import profile
from shared.store.unit_of_work import UnitOfWork


async def _groups(
    uow: UnitOfWork, tenant_id: uuid.UUID, group_ids: Sequence[uuid.UUID]
) -> list[asyncpg.Record]:
    if len(set(group_ids)) != len(group_ids):
        raise Refusal(Reason.INVALID_REQUEST, "group_ids lists a group twice")
    if not 1 <= len(group_ids) <= livecodes.MAX_GROUPS:
        raise Refusal(Reason.INVALID_REQUEST, f"a live code has 1 to {livecodes.MAX_GROUPS} groups")
    rows = await uow.conn.fetch(
        "SELECT group_id, profile, timezone FROM groups "
        "WHERE tenant_id = $1 AND group_id = ANY($2)",
        tenant_id,
        list(group_ids),
    )
    found = {r["group_id"]: r for r in rows}
    missing = [str(g) for g in group_ids if g not in found]
    if missing:
        raise Refusal(Reason.INVALID_REQUEST, f"no group {', '.join(missing)}")
    for row in rows:
        rules = profile(row["profile"])
        if not rules.qr_join:
            # A live code has no verification of its own: it could never admit anyone here.
            raise rules.outside(
                "group_ids", f"group {row['group_id']} admits only by approval; a live code cannot"
            )
    return [found[g] for g in group_ids]


def _rules(
    strategy: str, rules: Sequence[RuleIn], group_ids: Sequence[uuid.UUID]
) -> list[RouteRule]:
    if strategy == "by_attribute" and not rules:
        raise Refusal(Reason.INVALID_REQUEST, "strategy by_attribute needs at least one rule")
    if strategy != "by_attribute" and rules:
        raise Refusal(Reason.INVALID_REQUEST, "rules go with strategy by_attribute")
    for rule in rules:
        if rule.group_id not in group_ids:
            raise Refusal(
                Reason.INVALID_REQUEST, f"rule sends to {rule.group_id}, not in group_ids"
            )
    return [
        RouteRule(match={k: list(v) for k, v in r.match.items()}, group_id=r.group_id)
        for r in rules
    ]


def _auto_create(
    given: AutoCreateIn | None, first_profile: str, groups_now: int
) -> AutoCreate | None:
    if given is None:
        return None
    rules = profile(first_profile if given.profile is UNSET else given.profile)
    if not rules.qr_join:
        raise rules.outside(
            "auto_create.profile",
            "groups of this profile admit only by approval; a live code cannot",
        )
    if given.max_groups < groups_now:
        raise Refusal(
            Reason.INVALID_REQUEST,
            f"auto_create.max_groups ({given.max_groups}) is below the {groups_now} "
            "groups the live code already has",
        )
    return AutoCreate(
        base_name=given.base_name,
        max_members=rules.members(None if given.max_members is UNSET else given.max_members),
        max_groups=given.max_groups,
        profile=rules.name,
    )


def _record(
    uow: UnitOfWork,
    live: livecodes.LiveCode | None,
    tenant_id: uuid.UUID,
    event: LiveCodeConfigured | LiveCodeRevoked,
    live_code_id: uuid.UUID,
) -> None:
    uow.record(
        event,
        stream_id=livecodes.stream(live_code_id),
        version=(live.version if live else 0) + 1,
        tenant_id=tenant_id,
        key=str(live_code_id),
    )


async def create_live_code(cmd: CreateLiveCode, deps: Deps) -> uuid.UUID:
    spec = cmd.spec

    async def decide(uow: UnitOfWork) -> uuid.UUID:
        rows = await _groups(uow, cmd.tenant_id, spec.group_ids)
        await check_fallback(uow, cmd.tenant_id, spec.fallback_url)
        live_code_id = uuid7()
        key = await deps.signing_keys.active(uow.conn, cmd.tenant_id)
        token = codetoken.issue(live_code_id, None, key, live=True)
        event = LiveCodeConfigured(
            live_code_id=live_code_id,
            name=spec.name,
            group_ids=list(spec.group_ids),
            strategy=spec.strategy,
            switch_at=spec.switch_at,
            rules=_rules(spec.strategy, spec.rules, spec.group_ids),
            auto_create=_auto_create(spec.auto_create, rows[0]["profile"], len(rows)),
            fallback_url=spec.fallback_url,
            key_id=key.key_id,
            payload=codetoken.payload_url(deps.public_url, token),
            channel=spec.channel,
        )
        _record(uow, None, cmd.tenant_id, event, live_code_id)
        return live_code_id

    return await deps.outbox.run(decide)


async def change_live_code(cmd: ChangeLiveCode, deps: Deps) -> uuid.UUID:
    change = cmd.changes

    async def decide(uow: UnitOfWork) -> uuid.UUID:
        live = await load_live_code(uow, cmd.tenant_id, cmd.live_code_id)
        if live.revoked_at is not None:
            raise Refusal(Reason.CODE_NOT_CHANGEABLE, "the live code is revoked")
        group_ids = [g for g in live.group_ids if g not in change.remove_group_ids]
        group_ids += [g for g in change.add_group_ids if g not in group_ids]
        rows = await _groups(uow, cmd.tenant_id, group_ids)
        strategy = live.config.strategy if change.strategy is UNSET else change.strategy
        rules_in = (
            [
                RuleIn(match=r.match, group_id=r.group_id)
                for r in live.config.rules
                if r.group_id in group_ids
            ]
            if change.rules is UNSET
            else change.rules
        )
        auto = live.config.auto_create
        if change.auto_create is not UNSET:
            auto = _auto_create(change.auto_create, rows[0]["profile"], len(rows))
        updates = {
            "group_ids": group_ids,
            "strategy": strategy,
            "rules": _rules(strategy, rules_in, group_ids),
            "auto_create": auto,
        }
        for name in ("name", "switch_at", "fallback_url", "channel"):
            value = getattr(change, name)
            if value is not UNSET:
                updates[name] = value
        if change.fallback_url is not UNSET:
            await check_fallback(uow, cmd.tenant_id, change.fallback_url)
        event = live.reconfigured(**updates)
        if event != live.config:
            _record(uow, live, cmd.tenant_id, event, live.live_code_id)
        return live.live_code_id

    return await deps.outbox.run(decide)


async def revoke_live_code(cmd: RevokeLiveCode, deps: Deps) -> uuid.UUID:
    async def decide(uow: UnitOfWork) -> uuid.UUID:
        live = await load_live_code(uow, cmd.tenant_id, cmd.live_code_id)
        if live.revoked_at is None:
            _record(
                uow,
                live,
                cmd.tenant_id,
                LiveCodeRevoked(live_code_id=live.live_code_id, reason=cmd.reason),
                live.live_code_id,
            )
        return live.live_code_id

    return await deps.outbox.run(decide)


async def open_next_group(uow: UnitOfWork, live_code_id: uuid.UUID, groups_seen: int) -> bool:
    """auto_create, as a reaction to the redeemer finding every group of the live code full.
    Runs inside the transaction that applies that event, so it happens exactly once."""
    live = await load_live_code(uow, None, live_code_id)
    if not live.may_open_group(groups_seen):
        return False
    auto = live.config.auto_create
    assert auto is not None
    timezone = await uow.conn.fetchval(
        "SELECT timezone FROM groups WHERE group_id = $1", live.group_ids[0]
    )
    group_id = uuid7()
    uow.record(
        GroupCreated(
            group_id=group_id,
            name=live.next_group_name(),
            max_members=auto.max_members,
            profile=auto.profile,
            timezone=timezone or "Asia/Shanghai",
            live_code_id=live_code_id,
        ),
        stream_id=groups.stream(group_id),
        version=1,
        tenant_id=live.tenant_id,
        key=str(group_id),
    )
    _record(
        uow,
        live,
        live.tenant_id,
        live.reconfigured(group_ids=[*live.group_ids, group_id]),
        live_code_id,
    )
    return True
