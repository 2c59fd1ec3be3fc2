"""Personal data in the log: sealed per person, erasable on request and by retention, with
the log still verifying, the seats and counters unchanged, and the report saying so. And
`audit replay`: the redeemer's state rebuilt from the logs is the live one."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from services.redeemer.background.retention import Retention, RetentionPolicy
from services.redeemer.projections.replay import KeyRing, dump
from shared.clock import utcnow
from shared.crypto.kek import Kek
from shared.events.envelope import decode_envelope
from shared.events.personal import Sealed
from shared.store.unit_of_work import Outbox
from tests.support.cli import qunma
from tests.support.dbsearch import tables_holding
from tests.support.infra import Infra
from tests.support.logcheck import read_topic
from tests.support.stack import Stack, started_stack


@pytest.fixture(scope="module")
async def stack(infra: Infra) -> AsyncIterator[Stack]:
    env = {"QUNMA_CHECKPOINT_SECONDS": "0.5", "QUNMA_JOIN_TOKEN_TTL_SECONDS": "1"}
    async with started_stack(infra, extra_env=env) as started:
        yield started


async def _join(stack: Stack, payload: str, user: str, **fields: Any) -> dict[str, Any]:
    scanned = await stack.scan(payload, user, **fields)
    assert scanned.status == 200, scanned.body
    joined = await stack.join(scanned.body["join_token"], user)
    assert joined.status == 201, joined.body
    return dict(joined.body)


async def _swept(stack: Stack, group_id: str, timeout: float = 30) -> None:
    """Until the group holds no seat for an unredeemed token (the sweeper has run)."""
    conn = await asyncpg.connect(stack.env["QUNMA_REDEEMER_DATABASE_URL"])
    try:
        async with asyncio.timeout(timeout):
            while await conn.fetchval(
                "SELECT reserved FROM groups WHERE group_id = $1", uuid.UUID(group_id)
            ):
                await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def _records(stack: Stack) -> list[bytes]:
    """Every record of the redeemer's log, once everything committed is published."""
    await stack.quiet()
    db = stack.env["QUNMA_REDEEMER_DATABASE_URL"]
    conn = await asyncpg.connect(db)
    try:
        total = await conn.fetchval("SELECT count(*) FROM events")
    finally:
        await conn.close()
    found = await read_topic(
        stack.settings.kafka, stack.settings.redeemer_topic, stack.settings.partitions, total
    )
    return [value for _, value in found]


async def _keys(stack: Stack) -> KeyRing:
    return await KeyRing.load(
        stack.env["QUNMA_REDEEMER_DATABASE_URL"], Kek.from_text(stack.redeemer_kek)
    )


async def _state(stack: Stack) -> dict[str, list[tuple[Any, ...]]]:
    conn = await asyncpg.connect(stack.env["QUNMA_REDEEMER_DATABASE_URL"])
    try:
        return await dump(conn)
    finally:
        await conn.close()


async def test_personal_values_travel_sealed_and_open_only_with_the_persons_key(
    stack: Stack,
) -> None:
    group = await stack.create_group("sealed values")
    code = await stack.issue_code(group["group_id"])
    await _join(
        stack,
        code["payload"],
        "wx-4f1c-alice",
        display_name="Alice Zhang",
        device_id="device-alice-7",
        location={"lat": 31.2304, "lon": 121.4737},
    )
    records = await _records(stack)
    for secret in (b"wx-4f1c-alice", b"Alice Zhang", b"device-alice-7", b"31.2304", b"127.0.0.1"):
        assert not any(secret in r for r in records), f"{secret!r} is in the log in clear"
    keys = await _keys(stack)
    accepted = [
        env.event()
        for env in map(decode_envelope, records)
        if env.type == "ScanAccepted" and env.event().group_id == uuid.UUID(group["group_id"])  # type: ignore[attr-defined]
    ]
    assert len(accepted) == 1
    scan: Any = accepted[0]
    assert scan.person.startswith("p_")
    assert keys.reveal(scan.user, "user") == "wx-4f1c-alice"
    assert keys.reveal(scan.display_name, "display_name") == "Alice Zhang"
    assert keys.reveal(scan.device, "device") == "device-alice-7"
    assert keys.reveal(scan.ip, "ip") == "127.0.0.1"
    assert keys.reveal(scan.location, "location") == "31.2304,121.4737"
    # A value moved to another field does not open: the field is bound into the seal.
    assert keys.reveal(Sealed(scan.user.k, scan.user.c), "display_name") is None


async def test_erasure_keeps_the_log_verifiable_the_seats_and_the_counts(stack: Stack) -> None:
    group = await stack.create_group("erasure")
    code = await stack.issue_code(group["group_id"])
    # Bob leaves values everywhere one can: a wrong answer on a verified code, and a scan
    # and a join sent with Idempotency-Keys (answers kept for retries, which name him).
    guarded = await stack.issue_code(
        group["group_id"],
        rotate=False,
        verification={"mode": "invite_code", "invite_code": "Right42"},
    )
    assert (await stack.scan(guarded["payload"], "wx-bob-erase", invite_code="nope")).status == 403
    scanned = await stack.redeemer.post(
        "/v1/scans",
        {"payload": code["payload"], "user_id": "wx-bob-erase", "display_name": "Bob"},
        headers={"Idempotency-Key": "bob-scan"},
    )
    assert scanned.status == 200, scanned.body
    joining = {"join_token": scanned.body["join_token"], "user_id": "wx-bob-erase"}
    joined = await stack.redeemer.post(
        "/v1/joins", joining, headers={"Idempotency-Key": "bob-join"}
    )
    assert joined.status == 201, joined.body
    await _join(stack, code["payload"], "wx-carol-keep", display_name="Carol")
    await stack.quiet()
    before = await _state(stack)

    erased = await stack.redeemer.call("DELETE", "/v1/people/wx-bob-erase")
    assert erased.status == 200, erased.body
    # No table of either service holds his user id any more, in any form.
    for database in ("QUNMA_REDEEMER_DATABASE_URL", "QUNMA_ISSUER_DATABASE_URL"):
        assert await tables_holding(stack.env[database], "wx-bob-erase") == [], database
    retried = await stack.redeemer.post(
        "/v1/joins", joining, headers={"Idempotency-Key": "bob-join"}
    )
    assert "Idempotent-Replayed" not in retried.headers and retried.status != 201
    assert erased.body["keys_destroyed"] >= 1 and erased.body["person"].startswith("p_")
    person = erased.body["person"]

    members = await stack.redeemer.get(f"/v1/groups/{group['group_id']}/members")
    assert members.body["member_count"] == 2
    assert sorted(m["user_id"] for m in members.body["members"]) == sorted(
        [f"erased:{person}", "wx-carol-keep"]
    )
    await stack.quiet()
    # Nothing the log decides changed: counters, memberships (by pseudonym), facts.
    assert await _state(stack) == before

    verified = await qunma(stack.cli_env(), "audit", "verify", "--json")
    assert verified.code == 0, verified.out + verified.err
    report = await qunma(stack.cli_env(), "audit", "report", "--json", "--group", group["group_id"])
    assert report.code == 0, report.err
    users = {j["person"]: j["user"] for j in report.json()["joins"]}
    assert users[person] == "[erased]" and "wx-carol-keep" in users.values()
    assert report.json()["people_erased"] >= 1
    # Without the person keys nothing is readable, erased or not.
    sealed = await qunma(stack.env, "audit", "report", "--json", "--group", group["group_id"])
    assert {j["user"] for j in sealed.json()["joins"]} == {"[sealed]"}

    again = await stack.redeemer.call("DELETE", "/v1/people/wx-bob-erase")
    assert again.status == 404 and again.body["code"] == "not_found"


async def test_forget_from_the_command_line_and_who_may_erase(stack: Stack) -> None:
    group = await stack.create_group("forget cli")
    code = await stack.issue_code(group["group_id"])
    await _join(stack, code["payload"], "wx-dan-cli")
    ran = await qunma(
        stack.cli_env(), "forget", "--tenant", stack.tenant_id, "--user-id", "wx-dan-cli"
    )
    assert ran.code == 0, ran.err
    assert ran.json()["keys_destroyed"] >= 1
    missing = await qunma(
        stack.cli_env(), "forget", "--tenant", stack.tenant_id, "--user-id", "wx-never-seen"
    )
    assert missing.code == 1 and "no personal data" in missing.err
    # Erasure needs the admin scope.
    created = await stack.issuer.post("/v1/api-keys", {"name": "backend", "scopes": ["redeem"]})
    assert created.status == 201, created.body
    async with asyncio.timeout(30):
        while (
            refused := await stack.redeemer.call(
                "DELETE", "/v1/people/wx-carol-keep", key=created.body["api_key"]
            )
        ).status == 401:
            await asyncio.sleep(0.05)  # the redeemer learns the new key from the log
    assert refused.status == 403


async def test_retention_destroys_a_personal_groups_keys_after_seven_days(stack: Stack) -> None:
    personal = await stack.create_group("kept a week")
    internal = await stack.create_group("kept half a year", profile="wecom_internal")
    await _join(stack, (await stack.issue_code(personal["group_id"]))["payload"], "wx-erin")
    await _join(stack, (await stack.issue_code(internal["group_id"]))["payload"], "wx-frank")
    await stack.quiet()
    pool = await asyncpg.create_pool(
        stack.env["QUNMA_REDEEMER_DATABASE_URL"], min_size=1, max_size=2
    )
    assert pool is not None
    try:
        outbox = Outbox(pool, stack.settings.redeemer_log)
        now = utcnow()

        async def apply_on(day: int) -> list[Any]:
            at = now + timedelta(days=day)
            return await Retention(outbox, RetentionPolicy(7, 180), clock=lambda: at).apply()

        assert await apply_on(7) == []  # seven full days after the event: still kept
        done = await apply_on(8)
        assert [(e.profile, e.keys_destroyed > 0) for e in done] == [("personal", True)]
    finally:
        await pool.close()
    await stack.quiet()
    report = await qunma(stack.cli_env(), "audit", "report", "--json")
    users = {j["group_name"]: j["user"] for j in report.json()["joins"]}
    assert users["kept a week"] == "[erased]" and users["kept half a year"] == "wx-frank"
    assert any(r["profile"] == "personal" for r in report.json()["retention"])
    verified = await qunma(stack.cli_env(), "audit", "verify", "--json")
    assert verified.code == 0, verified.out + verified.err
    # Memberships and seats are the live system's: retention does not touch them.
    members = await stack.redeemer.get(f"/v1/groups/{personal['group_id']}/members")
    assert [m["user_id"] for m in members.body["members"]] == ["wx-erin"]


async def test_replay_twice_is_identical_and_is_the_live_state(stack: Stack) -> None:
    """Everything the redeemer decides, then replayed from offset 0 into two empty
    databases: zero differences, and the two rebuilt databases are the same."""
    group = await stack.create_group("replayed", max_members=3)
    code = await stack.issue_code(group["group_id"], channel="flyer", daily_scan_limit=50)
    await _join(stack, code["payload"], "wx-g1")
    await _join(stack, code["payload"], "wx-g2")
    assert (await stack.scan(code["payload"], "wx-g3")).status == 200  # never redeemed
    left = await stack.redeemer.call("DELETE", f"/v1/groups/{group['group_id']}/members/wx-g1")
    assert left.status == 204
    asked = await stack.create_group("asked", profile="wecom_internal")
    approval = await stack.issue_code(asked["group_id"], verification={"mode": "approval"})
    for user, decision in (("wx-h1", "approve"), ("wx-h2", "decline")):
        pending = await stack.scan(approval["payload"], user, display_name=user.upper())
        assert pending.status == 202, pending.body
        decided = await stack.redeemer.post(
            f"/v1/join-requests/{pending.body['join_request_id']}/{decision}", {}
        )
        assert decided.status in (200, 201, 204), decided.body
    assert (await stack.scan("not a code", "wx-h3")).status == 400
    await _swept(stack, group["group_id"])  # wx-g3's token expires and is swept
    await stack.quiet()

    admin = await asyncpg.connect(stack.env["QUNMA_REDEEMER_DATABASE_URL"])
    names = [f"replay_{uuid.uuid4().hex[:10]}" for _ in range(2)]
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    base = stack.env["QUNMA_REDEEMER_DATABASE_URL"].rsplit("/", 1)[0]
    rebuilt = []
    for name in names:
        ran = await qunma(stack.cli_env(), "audit", "replay", "--into", f"{base}/{name}", "--json")
        assert ran.code == 0, ran.out + ran.err
        assert ran.json()["differences"] == []
        conn = await asyncpg.connect(f"{base}/{name}")
        try:
            rebuilt.append(await dump(conn))
        finally:
            await conn.close()
    assert rebuilt[0] == rebuilt[1]
    assert rebuilt[0]["groups"] and rebuilt[0]["memberships"] and rebuilt[0]["join_requests"]
    again = await qunma(stack.cli_env(), "audit", "replay", "--into", f"{base}/{names[0]}")
    assert again.code == 2 and "not empty" in again.err


async def test_the_report_says_who_did_what_and_which_codes_were_valid(
    stack: Stack, tmp_path: Path
) -> None:
    group = await stack.create_group("reported")
    code = await stack.issue_code(group["group_id"], channel="booth")
    await _join(stack, code["payload"], "wx-ivy")
    refused_before = await stack.issuer.post(
        f"/v1/codes/{code['code_id']}/revoke", {"reason": "leaked on a forum"}
    )
    assert refused_before.status == 200
    async with asyncio.timeout(10):
        while (await stack.scan(code["payload"], "wx-jay")).status == 200:
            await asyncio.sleep(0.05)
    await stack.quiet()
    env = stack.cli_env()
    report = await qunma(env, "audit", "report", "--json", "--group", group["group_id"])
    doc = report.json()
    key_id = (await stack.issuer.get("/v1/api-keys")).body["api_keys"][0]["key_id"]
    actions = {a["action"]: a for a in doc["history"]}
    assert actions["issued"]["by"] == actions["revoked"]["by"] == f"key:{key_id}"
    assert actions["revoked"]["detail"] == "leaked on a forum"
    [summary] = doc["codes"]
    assert summary["status"] == "revoked" and summary["reason"] == "leaked on a forum"
    assert summary["scans"]["accepted"] >= 1 and summary["scans"]["code_revoked"] >= 1
    assert doc["joins_by_code_and_channel"] == [
        {"code_id": code["code_id"], "channel": "booth", "joins": 1}
    ]
    assert [j["user"] for j in doc["joins"]] == ["wx-ivy"]
    assert doc["valid_at"]["codes"] == []
    # As of a moment after the join and before the revocation, the code was valid.
    joined_at = doc["joins"][0]["joined_at"]
    earlier = await qunma(
        env, "audit", "report", "--json", "--group", group["group_id"], "--as-of", joined_at
    )
    assert earlier.json()["valid_at"]["codes"] == [code["code_id"]]
    assert earlier.json()["codes"][0]["status"] == "active"
    # Another tenant's report does not show this group.
    other = await qunma(env, "audit", "report", "--json", "--tenant", str(uuid.uuid4()))
    assert other.json()["codes"] == [] and other.json()["joins"] == []
    # The page: self-contained, with its charts.
    page = tmp_path / "report.html"
    shown = await qunma(env, "audit", "report", "--group", group["group_id"], "--html", str(page))
    assert shown.code == 0 and "Who joined which group" in shown.out
    text = await asyncio.to_thread(page.read_text, encoding="utf-8")
    assert text.count("<svg") == 2 and "code_revoked" in text and "<script" not in text
