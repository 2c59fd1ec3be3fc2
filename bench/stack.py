"""What a scan bench drives beside `qunma up`: more redeemer replicas, a quiet point between
steps, and the open-loop scan generator."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.common import summary
from shared.runtime.children import free_port

NO_RATE_LIMITS = {
    "QUNMA_RATE_LIMIT_PER_IP": "0",
    "QUNMA_RATE_LIMIT_PER_USER": "0",
    "QUNMA_RATE_LIMIT_PER_KEY": "0",
    "QUNMA_RATE_LIMIT_PER_TENANT": "0",
}


def _stack_env(up: dict[str, str], extra: dict[str, str] | None) -> dict[str, str]:
    secrets = json.loads((Path(up["data_dir"]) / "secrets.json").read_text())
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUNMA_")}
    env.update(
        {
            "QUNMA_ISSUER_DATABASE_URL": up["issuer_database_url"],
            "QUNMA_REDEEMER_DATABASE_URL": up["redeemer_database_url"],
            "QUNMA_KAFKA_BOOTSTRAP": up["kafka_bootstrap"],
            "QUNMA_ISSUER_URL": up["issuer_url"],
            "QUNMA_KEK": secrets["kek"],
            "QUNMA_LOG_TOKEN": secrets["log_token"],
            "QUNMA_LOG_LEVEL": "WARNING",
            **NO_RATE_LIMITS,
            **(extra or {}),
        }
    )
    return env


async def replica(
    up: dict[str, str], extra_env: dict[str, str] | None = None
) -> tuple[asyncio.subprocess.Process, str]:
    """One more redeemer on its own port with the stack's settings (plus `extra_env`, which
    must repeat whatever the stack was started with, e.g. QUNMA_LOG_PARTITIONS), once ready."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qunma",
        "redeemer",
        "--port",
        str(port),
        env=_stack_env(up, extra_env),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        async with asyncio.timeout(60):
            while True:
                try:
                    async with session.get(f"{url}/readyz") as r:
                        if r.status == 200:
                            break
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
    return proc, url


async def quiet(up: dict[str, str]) -> None:
    """Wait until no token is outstanding and both logs are published and applied, so each
    step (and the floor) starts from the same state and pays only for its own scans."""
    redeemer = await asyncpg.connect(up["redeemer_database_url"])
    issuer = await asyncpg.connect(up["issuer_database_url"])
    try:
        async with asyncio.timeout(120):
            while True:
                tokens = await redeemer.fetchval("SELECT count(*) FROM join_tokens")
                behind = await redeemer.fetchval(
                    "SELECT count(*) FROM events WHERE position IS NULL"
                ) + await redeemer.fetchval(
                    "SELECT coalesce(sum(sealed_position - published_position), 0) "
                    "FROM log_partitions"
                )
                sealed = await redeemer.fetchval(
                    "SELECT coalesce(sum(sealed_position), 0) FROM log_partitions"
                )
                applied = await issuer.fetchval("SELECT coalesce(sum(position), 0) FROM tracking")
                if tokens == 0 and behind == 0 and applied >= sealed:
                    return
                await asyncio.sleep(0.5)
    finally:
        await redeemer.close()
        await issuer.close()


async def offered(
    http: aiohttp.ClientSession,
    replicas: list[str],
    payloads: list[str],
    rate: int,
    seconds: float,
) -> dict[str, Any]:
    """Open loop: scan i is sent at start + i/rate whatever happened to the others, each by a
    new person. Scan i goes to replica i mod R and code (i div R) mod C, so every code is
    scanned through every replica."""
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    run = uuid.uuid4().hex[:8]
    fan = len(replicas)

    async def one(i: int, at: float) -> None:
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        async with http.post(
            f"{replicas[i % fan]}/v1/scans",
            json={"payload": payloads[(i // fan) % len(payloads)], "user_id": f"b{run}-{i}"},
        ) as r:
            await r.read()
            statuses[r.status] = statuses.get(r.status, 0) + 1
        latencies.append((time.perf_counter() - sent) * 1000)

    start = time.perf_counter() + 0.2
    await asyncio.gather(*(one(i, start + i / rate) for i in range(total)))
    elapsed = time.perf_counter() - start
    return {
        "offered_per_s": rate,
        "achieved_per_s": round(total / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency_ms": {k: round(v, 2) for k, v in summary(latencies).items()},
    }


def sustained(step: dict[str, Any], seconds: float) -> bool:
    """Every scan answered 200, at least 95 % of the offered rate, p99 under 500 ms."""
    return (
        step["statuses"].get("200") == int(step["offered_per_s"] * seconds)
        and step["achieved_per_s"] >= 0.95 * step["offered_per_s"]
        and step["latency_ms"]["p99"] < 500
    )


def given_up(step: dict[str, Any]) -> bool:
    """Saturated: past this every further step only queues longer."""
    return step["achieved_per_s"] < 0.8 * step["offered_per_s"]
