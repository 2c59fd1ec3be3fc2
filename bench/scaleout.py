"""Scans across several hot codes: one redeemer replica against three, on three partitions.

    python -m bench.scaleout [--quick] [--baseline bench/results/FILE.json]

1. For each configuration, three redeemer replicas first and then one, a fresh `qunma up`
   with `QUNMA_LOG_PARTITIONS=3` (rate limits off), so neither inherits the other's logs
   (the broker holds them in memory) or caches; two more replicas beside its own for three.
   Six hot codes are made, each in its own group, two in each partition (a group's events
   live in one partition).
2. For each offered rate, open-loop scans (each by a new person, so each takes the
   accepted path) spread over the codes and the replicas (every code through every
   replica) for a fixed time after a warm-up, until a step answers under 80 % of what was
   offered. The CPU each part used during each step is read from /proc, so each part's CPU
   per scan is known.
3. Caps exact, with the replicas racing: each configuration gets six new codes with
   `max_scans` = 300 and is sent 450 scans of each, interleaved over codes and replicas,
   at once. Every code must answer exactly 300 scans with 200, count exactly 300 scans used
   in the redeemer's projection and hold exactly 300 outstanding tokens.
4. A PNG beside the JSON: throughput and p99 against the offered rate for both
   configurations (and the `--baseline` run's curves when given).

"Sustained" is as in bench/scans.py: every scan answered 200, ≥ 95 % of the offered rate,
p99 under 500 ms.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench import plot
from bench.common import hot_code, parser, qunma_up, report
from bench.stack import NO_RATE_LIMITS, given_up, offered, quiet, replica, sustained
from shared.store.eventstore import LogSpec

PARTITIONS = 3
HOT_CODES = 6
CAP = 300
CONNECTIONS = 256
RATES = [200, 400, 600, 800, 1000, 1200, 1500, 2000]
_TICKS = os.sysconf("SC_CLK_TCK")
_PARTS = ("redeemer", "postgres", "issuer", "broker", "load generator")


def _part(pid: int, cmdline: str) -> str | None:
    if pid == os.getpid():
        return "load generator"
    if "qunma redeemer" in cmdline:
        return "redeemer"
    if "qunma issuer" in cmdline:
        return "issuer"
    program = os.path.basename(cmdline.split(" ", 1)[0])
    if program.startswith("postgres"):  # the server and its backends ("postgres: …")
        return "postgres"
    if "tansu" in program:
        return "broker"
    return None


def cpu_seconds() -> dict[str, float]:
    """CPU time (user + system) used so far by each part of the stack on this host."""
    used = dict.fromkeys(_PARTS, 0.0)
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode().strip()
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        part = _part(int(entry.name), cmdline)
        if part is not None:
            used[part] += (int(fields[11]) + int(fields[12])) / _TICKS
    return used


async def _ramp(
    http: aiohttp.ClientSession,
    up: dict[str, str],
    replicas: list[str],
    payloads: list[str],
    rates: list[int],
    seconds: float,
) -> list[dict[str, Any]]:
    steps = []
    for rate in rates:
        await quiet(up)
        await offered(http, replicas, payloads, rate, 1.0)  # warm-up at this rate
        before = cpu_seconds()
        step = await offered(http, replicas, payloads, rate, seconds)
        after = cpu_seconds()
        answered = sum(step["statuses"].values())
        step["cpu_ms_per_scan"] = {
            part: round((after[part] - before[part]) * 1000 / answered, 3) for part in _PARTS
        }
        steps.append(step)
        print(f"  {len(replicas)} replica(s), offered {rate}/s: {step}", flush=True)
        await asyncio.sleep(1)
        if given_up(step):
            break
    return steps


async def _caps(
    http: aiohttp.ClientSession, up: dict[str, str], replicas: list[str]
) -> dict[str, Any]:
    """Six capped codes raced through every replica at once: each must stop at exactly CAP."""
    await quiet(up)
    codes = [await hot_code(http, up, max_scans=CAP) for _ in range(HOT_CODES)]
    run = uuid.uuid4().hex[:8]
    per_code: dict[str, dict[int, int]] = {c["code_id"]: {} for c in codes}

    async def one(i: int) -> None:
        code = codes[(i // len(replicas)) % HOT_CODES]
        async with http.post(
            f"{replicas[i % len(replicas)]}/v1/scans",
            json={"payload": code["payload"], "user_id": f"c{run}-{i}"},
        ) as r:
            await r.read()
            seen = per_code[code["code_id"]]
            seen[r.status] = seen.get(r.status, 0) + 1

    await asyncio.gather(*(one(i) for i in range(HOT_CODES * CAP * 3 // 2)))
    conn = await asyncpg.connect(up["redeemer_database_url"])
    try:
        checked = []
        for code in codes:
            code_id = uuid.UUID(code["code_id"])
            used = await conn.fetchval("SELECT scans_used FROM codes WHERE code_id = $1", code_id)
            tokens = await conn.fetchval(
                "SELECT count(*) FROM join_tokens WHERE code_id = $1", code_id
            )
            answers = per_code[code["code_id"]]
            checked.append(
                {
                    "code_id": code["code_id"],
                    "answered": {str(k): v for k, v in sorted(answers.items())},
                    "scans_used": used,
                    "tokens": tokens,
                    "exact": answers.get(200) == CAP and used == CAP and tokens == CAP,
                }
            )
    finally:
        await conn.close()
    return {"cap": CAP, "exact": all(c["exact"] for c in checked), "codes": checked}


async def _spread(
    http: aiohttp.ClientSession, up: dict[str, str], log: LogSpec
) -> list[dict[str, Any]]:
    """HOT_CODES hot codes, as many in each partition (a new group's partition is chance)."""
    each = HOT_CODES // PARTITIONS
    kept: list[dict[str, Any]] = []
    while len(kept) < HOT_CODES:
        code = await hot_code(http, up)
        partition = log.partition_for(code["group_id"])
        if sum(log.partition_for(c["group_id"]) == partition for c in kept) < each:
            kept.append(code)
    return kept


def _best(steps: list[dict[str, Any]], seconds: float) -> dict[str, Any] | None:
    kept = [s for s in steps if sustained(s, seconds)]
    return max(kept, key=lambda s: s["achieved_per_s"]) if kept else None


async def main() -> None:
    args = parser(__doc__ or "").parse_args()
    rates, seconds = ([200, 600], 3.0) if args.quick else (RATES, 5.0)
    env = {**NO_RATE_LIMITS, "QUNMA_LOG_PARTITIONS": str(PARTITIONS)}
    log = LogSpec("qunma.redeemer.events", PARTITIONS)
    figures: dict[str, Any] = {}
    spread: list[int] = []
    # Each configuration on a stack of its own, three replicas first: neither inherits the
    # other's logs (the broker holds them in memory) or warmed caches.
    for count in (3, 1):
        async with qunma_up(env) as up:
            extra: list[asyncio.subprocess.Process] = []
            try:
                headers = {"Authorization": f"Bearer {up['api_key']}"}
                connector = aiohttp.TCPConnector(limit=CONNECTIONS)
                async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
                    codes = await _spread(http, up, log)
                    spread = sorted(log.partition_for(c["group_id"]) for c in codes)
                    replicas = [up["redeemer_url"]]
                    while len(replicas) < count:
                        proc, url = await replica(up, {"QUNMA_LOG_PARTITIONS": str(PARTITIONS)})
                        extra.append(proc)
                        replicas.append(url)
                    payloads = [c["payload"] for c in codes]
                    steps = await _ramp(http, up, replicas, payloads, rates, seconds)
                    best = _best(steps, seconds)
                    figures[f"replicas_{count}"] = {
                        "rates": steps,
                        "sustained_scans_per_s": best["achieved_per_s"] if best else 0.0,
                        "cpu_ms_per_scan_at_sustained": best["cpu_ms_per_scan"] if best else None,
                        "caps": await _caps(http, up, replicas),
                    }
            finally:
                for proc in extra:
                    proc.terminate()
                    await proc.wait()
    one, three = figures["replicas_1"], figures["replicas_3"]
    figures["ratio_3_to_1"] = (
        round(three["sustained_scans_per_s"] / one["sustained_scans_per_s"], 3)
        if one["sustained_scans_per_s"]
        else None
    )
    figures["partitions_of_hot_codes"] = spread
    for name, result in (("1 replica", one), ("3 replicas", three)):
        print(
            f"{name}: sustained {result['sustained_scans_per_s']}/s, CPU ms/scan "
            f"{result['cpu_ms_per_scan_at_sustained']}, caps exact: {result['caps']['exact']}"
        )
    print(f"3 replicas / 1 replica: {figures['ratio_3_to_1']}x; partitions of the codes {spread}")
    out = report(
        "scaleout",
        {
            "figures": figures,
            "settings": {
                "partitions": PARTITIONS,
                "hot_codes": HOT_CODES,
                "seconds_per_rate": seconds,
                "client_connections": CONNECTIONS,
                "cpus": os.cpu_count(),
            },
        },
        args,
    )
    series = {"1 replica": one["rates"], "3 replicas": three["rates"]}
    if args.baseline:
        baseline = json.loads(args.baseline.read_text())
        for key, label in (("replicas_1", "1 replica"), ("replicas_3", "3 replicas")):
            series[f"{label}, baseline ({baseline.get('at')})"] = baseline["figures"][key]["rates"]
    plot.rates(
        out.with_suffix(".png"),
        f"Scans of {HOT_CODES} hot codes on {PARTITIONS} partitions",
        series,
    )


if __name__ == "__main__":
    asyncio.run(main())
