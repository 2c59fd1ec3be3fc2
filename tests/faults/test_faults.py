"""One fault each, landing while a recorded workload is in flight; afterwards the same
checks (checks.py): every acknowledged write once, caps, seats, logs verified and replayed,
ready and serving, and never a 500."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
from pathlib import Path

from shared.runtime.children import free_port
from shared.runtime.postgres import EmbeddedPostgres
from tests.faults.checks import assert_nothing_lost_or_doubled, ready, setup_workload
from tests.faults.conftest import FAULT_ENV
from tests.support.infra import Infra
from tests.support.stack import Client, Stack, started_stack
from tests.support.workload import Workload

LOAD_BEFORE, LOAD_AFTER = 3.0, 5.0  # seconds of workload around the fault


async def _under_load(load: Workload, fault: object) -> None:
    running = asyncio.create_task(load.run())
    await asyncio.sleep(LOAD_BEFORE)  # the workload runs: nothing is waited for here
    await fault()  # type: ignore[operator]
    await asyncio.sleep(LOAD_AFTER)
    load.stop()
    await running


async def _leader(stack: Stack) -> str:
    """The name of the redeemer replica leading the relay of the redeemer's log."""
    async with asyncio.timeout(30):
        while True:
            for index, replica in enumerate(stack.replicas):
                ready_ = await replica.get("/readyz")
                if ready_.body["checks"]["relay"]["leader"]:
                    return "redeemer" if index == 0 else f"redeemer{index + 1}"
            await asyncio.sleep(0.1)


async def test_kill_the_redeemer_replica_that_leads_its_relay(infra: Infra) -> None:
    async with started_stack(infra, extra_env=FAULT_ENV, redeemers=2) as stack:
        load = await setup_workload(stack)
        leader = await _leader(stack)

        async def kill_leader() -> None:
            await stack.children[leader].kill()

        await _under_load(load, kill_leader)
        await stack.children[leader].start()  # it comes back, as a restarted pod would
        await assert_nothing_lost_or_doubled(stack, infra, load)


async def test_kill_the_issuer_while_it_issues(infra: Infra) -> None:
    async with started_stack(infra, extra_env=FAULT_ENV) as stack:
        load = await setup_workload(stack, rate=60)

        async def kill_issuer() -> None:
            await stack.children["issuer"].kill()
            await asyncio.sleep(1.0)  # down for a second, then restarted
            await stack.children["issuer"].start()

        await _under_load(load, kill_issuer)
        assert load.record.issued, "no code was issued around the kill"
        await assert_nothing_lost_or_doubled(stack, infra, load)


async def test_kill_the_postmaster_and_let_the_services_recover(infra: Infra) -> None:
    root = infra.root / f"pg-fault-{secrets.token_hex(3)}"
    postgres = EmbeddedPostgres(root, free_port(), root.with_suffix(".log"))
    await postgres.start()
    private = Infra(postgres, infra.broker, infra.root)
    try:
        async with started_stack(private, extra_env=FAULT_ENV) as stack:
            load = await setup_workload(stack)

            page = "/j/" + load.codes[0]["payload"].rsplit("/j/", 1)[1]

            async def kill_postmaster() -> None:
                assert postgres.child is not None and postgres.child.pid is not None
                os.kill(postgres.child.pid, signal.SIGKILL)
                await postgres.child.kill()
                # While it is down every route says so, as 503 with Retry-After: the API
                # as a problem, the landing page as a page.
                await _answers_503(stack.issuer, "/v1/groups", "application/problem+json")
                await _answers_503(stack.redeemer, page, "text/html")
                await asyncio.sleep(1.0)  # down a little longer; then a supervisor restarts it
                await _restart(postgres)

            await _under_load(load, kill_postmaster)
            assert load.record.statuses[503] > 0, load.record.statuses  # it was down
            await ready([stack.issuer, *stack.replicas])
            await assert_nothing_lost_or_doubled(stack, infra, load)
    finally:
        await postgres.stop()


async def _answers_503(client: Client, path: str, content_type: str) -> None:
    async with asyncio.timeout(10):  # until a pooled connection notices the server is gone
        while True:
            answer = await client.get(path)
            assert answer.status != 500, answer.body
            if answer.status == 503:
                assert answer.headers["Content-Type"].startswith(content_type), answer.headers
                assert answer.headers["Retry-After"] == "1"
                return
            await asyncio.sleep(0.05)


async def _restart(postgres: EmbeddedPostgres) -> None:
    """Start it again on its data (crash recovery), as soon as the old backends are gone."""
    async with asyncio.timeout(60):
        while True:
            try:
                await postgres.start(timeout=15)
                return
            except (RuntimeError, TimeoutError, OSError):
                await asyncio.sleep(0.5)


async def test_replace_the_broker_with_an_empty_one(infra: Infra) -> None:
    async with started_stack(infra, own_broker=True, extra_env=FAULT_ENV) as stack:
        load = await setup_workload(stack)
        await _under_load(load, stack.restart_broker)
        for service in (stack.issuer, stack.redeemer):  # both relays saw the wipe
            relay = (await service.get("/readyz")).body["checks"]["relay"]
            assert relay["republished_partitions"] >= 1, relay
        await assert_nothing_lost_or_doubled(stack, infra, load)


async def test_kill_between_a_commit_and_its_answer(infra: Infra, tmp_path: Path) -> None:
    marker = tmp_path / "crash-after-commit"
    env = {**FAULT_ENV, "QUNMA_TEST_CRASH_AFTER_COMMIT": str(marker)}
    async with started_stack(infra, extra_env=env) as stack:
        load = await setup_workload(stack, rate=40)
        group_id = load.groups[0]["group_id"]

        async def crash_after_a_code_commits() -> None:
            marker.write_text(f"POST /v1/groups/{group_id}/codes")
            async with asyncio.timeout(30):  # the next issue there kills the issuer
                while stack.children["issuer"].running:
                    await asyncio.sleep(0.05)
            await stack.children["issuer"].start()

        await _under_load(load, crash_after_a_code_commits)
        assert not marker.exists()
        # The retry of the request that died after its commit got that commit's answer.
        assert load.record.replayed >= 1
        await assert_nothing_lost_or_doubled(stack, infra, load)
