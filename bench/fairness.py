"""How much one tenant's junk slows another tenant's scans.

    python -m bench.fairness [--quick] [--baseline bench/results/FILE.json]

`qunma up` starts the stack (rate limits off, so that only admission and the key lookups
are measured). Tenant B scans its own code, one scan at a time by a new person each, first
alone and then while tenant A keeps `FLOOD` scans in flight whose tokens name signing keys
that do not exist (each a new random key id, so no cache can answer them). The figures are
B's latencies in both phases, and how many of A's scans were answered.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from bench.common import parser, qunma_up, report, summary
from shared import config
from shared.crypto.signing import b64url

FLOOD = 40


def _forged() -> str:
    header = struct.pack(">B16s8sQ", 1, uuid.uuid4().bytes, os.urandom(8), 0)
    return b64url(header + os.urandom(64))


async def _provision(up: dict[str, Any], name: str) -> str:
    from services.issuer.provision import provision_tenant

    secrets = json.loads((Path(up["data_dir"]) / "secrets.json").read_text())
    env = {**up["env"], "QUNMA_KEK": secrets["kek"], "QUNMA_LOG_TOKEN": secrets["log_token"]}
    return (await provision_tenant(config.from_env(env), name)).api_key


async def _victim_scans(
    session: aiohttp.ClientSession, up: dict[str, Any], key: str, payload: str, count: int
) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        async with session.post(
            f"{up['redeemer_url']}/v1/scans",
            json={"payload": payload, "user_id": f"u-{uuid.uuid4().hex}"},
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            await resp.read()
            assert resp.status == 200, resp.status
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def _flood(
    session: aiohttp.ClientSession, up: dict[str, Any], key: str, stop: asyncio.Event
) -> int:
    answered = 0
    while not stop.is_set():
        async with session.post(
            f"{up['redeemer_url']}/v1/scans",
            json={"payload": f"{up['public_url']}/j/{_forged()}", "user_id": "prober"},
            headers={"Authorization": f"Bearer {key}"},
        ) as resp:
            await resp.read()
        answered += 1
    return answered


async def main() -> None:
    args = parser(__doc__ or "").parse_args()
    count = 20 if args.quick else 100
    env = {
        "QUNMA_RATE_LIMIT_PER_IP": "0",
        "QUNMA_RATE_LIMIT_PER_USER": "0",
        "QUNMA_RATE_LIMIT_PER_KEY": "0",
        "QUNMA_RATE_LIMIT_PER_TENANT": "0",
    }
    async with qunma_up(env) as up, aiohttp.ClientSession() as session:
        victim = await _provision(up, "victim")
        auth = {"Authorization": f"Bearer {victim}"}
        async with session.post(
            f"{up['issuer_url']}/v1/groups",
            json={"name": "victim", "profile": "qq", "max_members": 2000},
            headers=auth,
        ) as resp:
            group = await resp.json()
        async with session.post(
            f"{up['issuer_url']}/v1/groups/{group['group_id']}/codes", json={}, headers=auth
        ) as resp:
            payload = (await resp.json())["payload"]
        await asyncio.sleep(1)  # let the redeemer learn the key and the code
        await _victim_scans(session, up, victim, payload, 5)  # warm up
        alone = await _victim_scans(session, up, victim, payload, count)
        stop = asyncio.Event()
        flooders = [
            asyncio.create_task(_flood(session, up, up["api_key"], stop)) for _ in range(FLOOD)
        ]
        await asyncio.sleep(1)
        flooded = await _victim_scans(session, up, victim, payload, count)
        stop.set()
        answered = sum(await asyncio.gather(*flooders))
    figures = {
        "victim_alone_ms": summary(alone),
        "victim_during_flood_ms": summary(flooded),
        "flood_scans_answered": answered,
    }
    print(
        f"victim alone p50 {figures['victim_alone_ms']['p50']:.1f} ms, "
        f"p99 {figures['victim_alone_ms']['p99']:.1f} ms; during a flood of {FLOOD} unknown-key "
        f"scans p50 {figures['victim_during_flood_ms']['p50']:.1f} ms, "
        f"p99 {figures['victim_during_flood_ms']['p99']:.1f} ms"
    )
    report("fairness", {"flood": FLOOD, "figures": figures}, args)


if __name__ == "__main__":
    asyncio.run(main())
