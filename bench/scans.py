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

import aiohttp

from bench import floors, plot
from bench.common import hot_code, parser, qunma_up, report
from bench.stack import NO_RATE_LIMITS, given_up, offered, quiet, replica, sustained

CONNECTIONS = 256
RATES = [100, 200, 300, 400, 500, 600, 800, 1000, 1200, 1500, 2000]


async def main() -> None:
    args = parser(__doc__ or "").parse_args()
    rates, seconds = ([100, 400], 3.0) if args.quick else (RATES, 6.0)
    async with qunma_up(NO_RATE_LIMITS) as up:
        second, second_url = await replica(up)
        try:
            headers = {"Authorization": f"Bearer {up['api_key']}"}
            # Like a front end, a bounded pool of connections per replica: past it, requests
            # queue in the client, and that wait is part of the latency measured.
            connector = aiohttp.TCPConnector(limit=CONNECTIONS)
            async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
                steps = []
                for rate in rates:
                    await quiet(up)
                    code = await hot_code(http, up)
                    replicas = [up["redeemer_url"], second_url]
                    # Warm up at this rate first (connections, caches), then measure.
                    await offered(http, replicas, [code["payload"]], rate, 1.0)
                    steps.append(await offered(http, replicas, [code["payload"]], rate, seconds))
                    print(f"offered {rate}/s: {steps[-1]}", flush=True)
                    await asyncio.sleep(1)
                    if given_up(steps[-1]):
                        break  # past saturation every further step only queues longer
                floor_code = await hot_code(http, up)
                scan_tried, minimal_tried = [], []
                for clients in floors.CLIENTS:
                    await quiet(up)
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
    best = max((s["achieved_per_s"] for s in steps if sustained(s, seconds)), default=0.0)
    half = [s for s in steps if s["offered_per_s"] <= best / 2]
    at_half = max(half, key=lambda s: s["offered_per_s"]) if half else None
    figures = {
        "rates": steps,
        "sustained_scans_per_s": best,
        "p99_ms_at_half_sustained": at_half["latency_ms"]["p99"] if at_half else None,
        "half_sustained_offered_per_s": at_half["offered_per_s"] if at_half else None,
        "floor": scan_floor,
        "minimal_floor": minimal_floor,
        "ratio_scans_to_floor": round(best / scan_floor["transactions_per_s"], 3),
        "ratio_scans_to_minimal_floor": round(best / minimal_floor["transactions_per_s"], 3),
    }
    print(
        f"sustained {best}/s; floor {scan_floor['transactions_per_s']} tps "
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


if __name__ == "__main__":
    asyncio.run(main())
