"""Scans per second and latency against two redeemer replicas, beside the database's floor.

    python -m bench.scans [--quick] [--baseline bench/results/FILE.json]

1. `qunma up` starts the stack (rate limits off); a second redeemer replica starts on its
   own port with the same settings. One group and code are made for each offered rate.
2. For each offered rate, an open-loop generator sends scans (each by a new person, so each
   reserves a seat and hands out a token: the full accepted path) for a fixed time,
   alternating replicas, and records each request's latency.
3. The floors, on the same server in the same run (bench/floors.py): `pgbench` running the
   scan's own SQL one transaction per scan, and the minimal transaction on one hot row
   (conditional UPDATE + INSERT token + INSERT event). The ratios are sustained scans/s over
   each floor's transactions/s; "sustained" is the best step where every scan answered 200,
   at least 95 % of the offered rate, with p99 under 500 ms. The p99 at the highest step at
   or below half the sustained rate is reported too.
4. A PNG beside the JSON: throughput and p99 against the offered rate, with both floors
   (and the `--baseline` run's curve when given). matplotlib: bench/requirements.txt.

Steps stop once a step answers less than 80 % of what was offered (saturated).

The bench lifts the test groups' member cap in the redeemer's database so that every scan
takes the accepted path (a full group would answer early, which is cheaper).
"""

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

from bench import floors, plot
from bench.common import hot_code, parser, qunma_up, report, summary
from shared.runtime.children import free_port

CONNECTIONS = 256
RATES = [100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000]


async def _stack_env(up: dict[str, str]) -> dict[str, str]:
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
            "QUNMA_RATE_LIMIT_PER_IP": "0",
            "QUNMA_RATE_LIMIT_PER_USER": "0",
            "QUNMA_RATE_LIMIT_PER_KEY": "0",
            "QUNMA_RATE_LIMIT_PER_TENANT": "0",
            "QUNMA_LOG_LEVEL": "WARNING",
        }
    )
    return env


async def _second_replica(up: dict[str, str]) -> tuple[asyncio.subprocess.Process, str]:
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qunma",
        "redeemer",
        "--port",
        str(port),
        env=await _stack_env(up),
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


async def _quiet(up: dict[str, str]) -> None:
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
    http: aiohttp.ClientSession, replicas: list[str], payload: str, rate: int, seconds: float
) -> dict[str, Any]:
    """Open loop: request i is sent at start + i/rate whatever happened to the others."""
    total = int(rate * seconds)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    run = uuid.uuid4().hex[:8]

    async def one(i: int, at: float) -> None:
        delay = at - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        sent = time.perf_counter()
        async with http.post(
            f"{replicas[i % len(replicas)]}/v1/scans",
            json={"payload": payload, "user_id": f"b{run}-{i}"},
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


async def main() -> None:
    args = parser(__doc__ or "").parse_args()
    rates, seconds = ([100, 400], 3.0) if args.quick else (RATES, 6.0)
    env = {
        "QUNMA_RATE_LIMIT_PER_IP": "0",
        "QUNMA_RATE_LIMIT_PER_USER": "0",
        "QUNMA_RATE_LIMIT_PER_KEY": "0",
        "QUNMA_RATE_LIMIT_PER_TENANT": "0",
    }
    async with qunma_up(env) as up:
        second, second_url = await _second_replica(up)
        try:
            headers = {"Authorization": f"Bearer {up['api_key']}"}
            # Like a front end, a bounded pool of connections per replica: past it, requests
            # queue in the client, and that wait is part of the latency measured.
            connector = aiohttp.TCPConnector(limit=CONNECTIONS)
            async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
                steps = []
                for rate in rates:
                    await _quiet(up)
                    code = await hot_code(http, up)
                    replicas = [up["redeemer_url"], second_url]
                    # Warm up at this rate first (connections, caches), then measure.
                    await offered(http, replicas, code["payload"], rate, 1.0)
                    steps.append(await offered(http, replicas, code["payload"], rate, seconds))
                    print(f"offered {rate}/s: {steps[-1]}", flush=True)
                    await asyncio.sleep(1)
                    if _given_up(steps[-1]):
                        break  # past saturation every further step only queues longer
                floor_code = await hot_code(http, up)
                scan_tried, minimal_tried = [], []
                for clients in floors.CLIENTS:
                    await _quiet(up)
                    scan_tried.append(
                        await floors.scan_floor(up, floor_code, clients=clients, seconds=8)
                    )
                    minimal_tried.append(
                        await floors.minimal_floor(
                            up["redeemer_database_url"], clients=clients, seconds=8
                        )
                    )
        finally:
            second.terminate()
            await second.wait()
    scan_floor, minimal_floor = floors.best(scan_tried), floors.best(minimal_tried)
    sustained = max((s["achieved_per_s"] for s in steps if _sustained(s, seconds)), default=0.0)
    half = [s for s in steps if s["offered_per_s"] <= sustained / 2]
    at_half = max(half, key=lambda s: s["offered_per_s"]) if half else None
    figures = {
        "rates": steps,
        "sustained_scans_per_s": sustained,
        "p99_ms_at_half_sustained": at_half["latency_ms"]["p99"] if at_half else None,
        "half_sustained_offered_per_s": at_half["offered_per_s"] if at_half else None,
        "floor": scan_floor,
        "minimal_floor": minimal_floor,
        "ratio_scans_to_floor": round(sustained / scan_floor["transactions_per_s"], 3),
        "ratio_scans_to_minimal_floor": round(sustained / minimal_floor["transactions_per_s"], 3),
    }
    print(
        f"sustained {sustained}/s; floor {scan_floor['transactions_per_s']} tps "
        f"({figures['ratio_scans_to_floor']}x), minimal transaction "
        f"{minimal_floor['transactions_per_s']} tps ({figures['ratio_scans_to_minimal_floor']}x); "
        f"p99 at {figures['half_sustained_offered_per_s']}/s: "
        f"{figures['p99_ms_at_half_sustained']} ms"
    )
    out = report(
        "scans",
        {
            "figures": figures,
            "settings": {
                "replicas": 2,
                "seconds_per_rate": seconds,
                "client_connections": CONNECTIONS,
                "between_steps": "no token outstanding, both logs published and applied",
                "sustained_means": (
                    "every scan answered 200, achieved >= 95% of offered, p99 < 500 ms"
                ),
            },
        },
        args,
    )
    series = {"this run": steps}
    if args.baseline:
        baseline = json.loads(args.baseline.read_text())
        series[f"baseline ({baseline.get('at')})"] = baseline["figures"]["rates"]
    plot.rates(
        out.with_suffix(".png"),
        "Scans of one hot code, two replicas",
        series,
        {
            "floor: the scan's SQL, one transaction each": scan_floor["transactions_per_s"],
            "floor: minimal transaction on one hot row": minimal_floor["transactions_per_s"],
        },
    )


def _sustained(step: dict[str, Any], seconds: float) -> bool:
    return (
        step["statuses"].get("200") == int(step["offered_per_s"] * seconds)
        and step["achieved_per_s"] >= 0.95 * step["offered_per_s"]
        and step["latency_ms"]["p99"] < 500
    )


def _given_up(step: dict[str, Any]) -> bool:
    return step["achieved_per_s"] < 0.8 * step["offered_per_s"]


if __name__ == "__main__":
    asyncio.run(main())
