"""Idempotency-Key answers: replayed only to the key that made them and only after its
scope is checked, sealed in the database, and committed with the request's own writes."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.support.dbsearch import tables_holding
from tests.support.stack import Stack


async def test_a_replay_checks_the_scope_and_the_key_that_made_it(stack: Stack) -> None:
    reader = await stack.issuer.post("/v1/api-keys", {"name": "r", "scopes": ["redeem"]})
    other_admin = await stack.issuer.post("/v1/api-keys", {"name": "a2", "scopes": ["admin"]})
    assert reader.status == other_admin.status == 201
    headers = {"Idempotency-Key": f"mint-{uuid.uuid4()}"}
    body = {"name": "minted", "scopes": ["admin"]}
    first = await stack.issuer.post("/v1/api-keys", body, headers=headers)
    assert first.status == 201 and first.body["api_key"].startswith("qk_")
    # A key without the scope is refused before any replay: it never sees the admin key.
    stolen = await stack.issuer.post(
        "/v1/api-keys", body, headers=headers, key=reader.body["api_key"]
    )
    assert (stolen.status, stolen.body["code"]) == (403, "forbidden"), stolen.body
    assert first.body["api_key"] not in stolen.raw.decode()
    # Another key with the scope gets the answer of nobody else either.
    other = await stack.issuer.post(
        "/v1/api-keys", body, headers=headers, key=other_admin.body["api_key"]
    )
    assert (other.status, other.body["code"]) == (422, "idempotency_key_reused"), other.body
    assert "another API key" in other.body["detail"]
    # The key that made it gets it again, secret included.
    again = await stack.issuer.post("/v1/api-keys", body, headers=headers)
    assert again.status == 201 and again.body == first.body
    assert again.headers["Idempotent-Replayed"] == "true"


async def test_no_secret_is_stored_in_clear(stack: Stack) -> None:
    made = await stack.issuer.post(
        "/v1/api-keys",
        {"name": "sealed", "scopes": ["redeem"]},
        headers={"Idempotency-Key": f"k-{uuid.uuid4()}"},
    )
    assert made.status == 201
    group = await stack.create_group("sealed answers", profile="wecom_internal")
    code = await stack.issue_code(group["group_id"])
    scanned = await stack.redeemer.post(
        "/v1/scans",
        {"payload": code["payload"], "user_id": "sealed-user"},
        headers={"Idempotency-Key": f"s-{uuid.uuid4()}"},
    )
    assert scanned.status == 200, scanned.body
    token = scanned.body["join_token"]
    assert await tables_holding(stack.env["QUNMA_ISSUER_DATABASE_URL"], made.body["api_key"]) == []
    assert await tables_holding(stack.env["QUNMA_REDEEMER_DATABASE_URL"], token) == []


async def test_a_retry_waits_for_the_running_request_and_gets_its_answer(stack: Stack) -> None:
    group = await stack.create_group("race")
    race = {"Idempotency-Key": f"race-{uuid.uuid4()}"}
    answers = await asyncio.gather(
        *(
            stack.issuer.post(f"/v1/groups/{group['group_id']}/codes", {}, headers=race)
            for _ in range(8)
        )
    )
    assert [a.status for a in answers] == [201] * 8, [a.body for a in answers]
    assert len({a.body["code_id"] for a in answers}) == 1
    assert sum("Idempotent-Replayed" not in a.headers for a in answers) == 1
    codes = (await stack.issuer.get(f"/v1/groups/{group['group_id']}/codes")).body["codes"]
    assert len(codes) == 1


async def test_a_claim_is_held_only_by_a_live_transaction(stack: Stack) -> None:
    """The claim is a row of the request's own transaction: while that is open a retry
    waits; once it rolls back (or its process dies) the key is free at once."""
    key = f"held-{uuid.uuid4()}"
    conn = await asyncpg.connect(stack.env["QUNMA_ISSUER_DATABASE_URL"])
    watcher = await asyncpg.connect(stack.env["QUNMA_ISSUER_DATABASE_URL"])
    try:
        # As a request still running would hold it: inserted, not committed.
        held = conn.transaction()
        await held.start()
        await conn.execute(
            "INSERT INTO idempotency_keys (scope, key, fingerprint, status) "
            "VALUES ($1, $2, '\\x00', 0)",
            stack.tenant_id,
            key,
        )
        retry = asyncio.create_task(
            stack.issuer.post("/v1/groups", {"name": "held"}, headers={"Idempotency-Key": key})
        )
        # Watched from another session: inside `held`, pg_stat_activity is a snapshot
        # taken once per transaction.
        async with asyncio.timeout(30):  # until the retry waits on the row we hold
            while not retry.done() and not await watcher.fetchval(
                "SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE datname = current_database()"
                " AND wait_event_type = 'Lock' AND query LIKE '%qunma_idempotency_claim%')"
            ):
                await asyncio.sleep(0.02)
        assert not retry.done(), retry.result()
        await held.rollback()  # the first request rolled back: nothing of it committed
        answer = await asyncio.wait_for(retry, 10)
        assert answer.status == 201 and "Idempotent-Replayed" not in answer.headers
        stored = await conn.fetchrow(
            "SELECT status, body FROM idempotency_keys WHERE scope = $1 AND key = $2",
            stack.tenant_id,
            key,
        )
        assert stored is not None and stored["status"] == 201
        assert b"held" not in bytes(stored["body"])  # sealed
    finally:
        await conn.close()
        await watcher.close()
