"""How long each fault of the fault suite keeps the stack from serving, and what clients see.

    python -m bench.recovery [--quick] [--baseline bench/results/FILE.json]

For each fault (the same as tests/faults/, on the same real processes), under the fault
suite's workload (about 60 operations a second, every POST retried with its
Idempotency-Key): the seconds from the fault until a scan of a code issued after it is
answered 200 on every redeemer, until every service's /readyz is green, and until both
logs are published again; and the answers clients got meanwhile (503s, retries).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import parser, report
from shared.runtime.children import free_port
from shared.runtime.postgres import EmbeddedPostgres
from tests.faults.conftest import FAULT_ENV
from tests.support.infra import Infra, start_infra
from tests.support.stack import Stack, started_stack
from tests.support.workload import Workload

Fault = Callable[[Stack], Awaitable[None]]


async def _serving(stack: Stack, started: float) -> float:
    group = (await stack.create_group("after", profile="wecom_internal"))["group_id"]
    code = await stack.issue_code(group)
    for replica in stack.replicas:
        while True:
            try:
                answer = await replica.post(
                    "/v1/scans", {"payload": code["payload"], "user_id": secrets.token_hex(6)}
                )
                if answer.status == 200:
                    break
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def _ready(stack: Stack, started: float) -> float:
    for client in (stack.issuer, *stack.replicas):
        while True:
            try:
                if (await client.get("/readyz")).status == 200:
                    break
            except (aiohttp.ClientError, OSError):
                pass
            await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def _republished(stack: Stack, before: dict[str, int]) -> None:
    """Until each service's relay has noticed the wipe (its republish count moved)."""
    for name, client in (("issuer", stack.issuer), ("redeemer", stack.replicas[0])):
        while True:
            try:
                body = (await client.get("/readyz")).body
                if body["checks"]["relay"]["republished_partitions"] > before[name]:
                    break
            except (aiohttp.ClientError, OSError, KeyError, TypeError):
                pass
            await asyncio.sleep(0.05)


async def _relays(stack: Stack) -> dict[str, int]:
    out = {}
    for name, client in (("issuer", stack.issuer), ("redeemer", stack.replicas[0])):
        out[name] = (await client.get("/readyz")).body["checks"]["relay"]["republished_partitions"]
    return out


async def _published(stack: Stack, started: float) -> float:
    """Until both logs are published as far as they were sealed when this was asked."""
    for client in (stack.issuer, stack.replicas[0]):
        heads = await client.get("/v1/log/heads", key=stack.settings.log_token)
        target = {p["partition"]: p["sealed_position"] for p in heads.body["partitions"]}
        while True:
            heads = await client.get("/v1/log/heads", key=stack.settings.log_token)
            if all(
                p["published_position"] >= target[p["partition"]] for p in heads.body["partitions"]
            ):
                break
            await asyncio.sleep(0.05)
    return time.perf_counter() - started


async def _measure(
    stack: Stack, fault: Fault, load_seconds: float, *, republishes: bool = False
) -> dict[str, Any]:
    from tests.faults.checks import setup_workload

    load: Workload = await setup_workload(stack)
    running = asyncio.create_task(load.run())
    await asyncio.sleep(load_seconds)
    relays = await _relays(stack)
    started = time.perf_counter()
    await fault(stack)
    ready = await _ready(stack, started)
    serving = await _serving(stack, started)
    if republishes:
        await _republished(stack, relays)
    published = await _published(stack, started)
    load.stop()
    await running
    return {
        "ready_s": round(ready, 2),
        "scan_served_s": round(serving, 2),
        "logs_published_s": round(published, 2),
        "answers_503": load.record.statuses[503],
        "answers_5xx_other": len(load.record.server_errors),
        "retries": load.record.retries,
    }


async def _kill_relay_leader(stack: Stack) -> None:
    for index, replica in enumerate(stack.replicas):
        if (await replica.get("/readyz")).body["checks"]["relay"]["leader"]:
            name = "redeemer" if index == 0 else f"redeemer{index + 1}"
            await stack.children[name].kill()
            stack.replicas.pop(index)  # serving is measured on the ones still running
            return


async def _kill_issuer(stack: Stack) -> None:
    await stack.children["issuer"].kill()
    await stack.children["issuer"].start()  # restarted at once, as a supervisor would


async def _replace_broker(stack: Stack) -> None:
    await stack.restart_broker()


async def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--only", help="run only the faults whose name contains this")
    args = cli.parse_args()
    load_seconds = 2.0 if args.quick else 4.0
    root = Path(tempfile.mkdtemp(prefix="qunma-recovery-"))
    infra = await start_infra(root)
    figures: dict[str, Any] = {}

    def wanted(name: str) -> bool:
        return args.only is None or args.only in name

    try:
        name = "kill -9 of the redeemer replica leading its relay"
        if wanted(name):
            async with started_stack(infra, extra_env=FAULT_ENV, redeemers=2) as stack:
                figures[name] = await _measure(stack, _kill_relay_leader, load_seconds)
        name = "kill -9 of the issuer, restarted at once"
        if wanted(name):
            async with started_stack(infra, extra_env=FAULT_ENV) as stack:
                figures[name] = await _measure(stack, _kill_issuer, load_seconds)
        name = "broker replaced by an empty one"
        if wanted(name):
            async with started_stack(infra, own_broker=True, extra_env=FAULT_ENV) as stack:
                figures[name] = await _measure(
                    stack, _replace_broker, load_seconds, republishes=True
                )
        name = "kill -9 of the postmaster, restarted at once"
        if wanted(name):
            figures[name] = await _postmaster(infra, load_seconds)
    finally:
        await infra.broker.stop()
        await infra.postgres.stop()
    for name, seen in figures.items():
        print(
            f"{name}: ready after {seen['ready_s']} s, a new code scanned after "
            f"{seen['scan_served_s']} s, logs published after {seen['logs_published_s']} s; "
            f"{seen['answers_503']} answers 503, {seen['answers_5xx_other']} other 5xx"
        )
    report("recovery", {"figures": figures}, args)


async def _postmaster(infra: Infra, load_seconds: float) -> dict[str, Any]:
    root = infra.root / "pg-fault"
    postgres = EmbeddedPostgres(root, free_port(), root.with_suffix(".log"))
    await postgres.start()
    private = Infra(postgres, infra.broker, infra.root)

    async def kill_and_restart(stack: Stack) -> None:
        assert postgres.child is not None
        assert postgres.child.pid is not None
        os.kill(postgres.child.pid, signal.SIGKILL)
        await postgres.child.kill()
        while True:  # as soon as the old backends are gone
            try:
                await postgres.start(timeout=15)
                return
            except (RuntimeError, TimeoutError, OSError):
                await asyncio.sleep(0.2)

    try:
        async with started_stack(private, extra_env=FAULT_ENV) as stack:
            return await _measure(stack, kill_and_restart, load_seconds)
    finally:
        await postgres.stop()


if __name__ == "__main__":
    asyncio.run(main())
