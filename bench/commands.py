"""Issuer commands over HTTP beside a plain event-sourcing recorder, in the same run.

    python -m bench.commands [--quick] [--baseline bench/results/FILE.json]

1. `qunma up` starts the stack (rate limits off). 64 `wecom_internal` groups are made.
2. qunma: N codes are issued over HTTP (`POST /v1/groups/{id}/codes`, no rotation, the
   groups in turn) from 32 connections, then each is revoked (`POST /v1/codes/{id}/revoke`).
   Each command is what an integrator gets: authenticated, validated, the aggregate's
   events appended with optimistic concurrency, the read model written in the same
   transaction, the QR payload signed, the answer encoded.
3. pyeventsourcing 9.5 (`eventsourcing.postgres`, the library's own PostgreSQL recorder)
   runs the same commands in-process from 8 threads against a database of its own on the
   same PostgreSQL server: a `Code` aggregate of the same shape (its signed payload made
   the same way) created and saved, then loaded, revoked and saved.

The ratio is qunma's commands/s over the recorder's. pyeventsourcing comes from
bench/requirements.txt (the bench's environment, not the package's).
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import asyncpg

from bench.common import parser, qunma_up, report, summary
from shared.crypto.signing import SigningKey

CONNECTIONS = 32
GROUPS = 64
THREADS = 8


async def _timed(calls: list[Any], connections: int) -> tuple[float, list[float], dict[int, int]]:
    """Run the request coroutines `calls` (factories) with at most `connections` at once."""
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    queue = list(reversed(calls))

    async def worker() -> None:
        while queue:
            call = queue.pop()
            sent = time.perf_counter()
            status = await call()
            latencies.append((time.perf_counter() - sent) * 1000)
            statuses[status] = statuses.get(status, 0) + 1

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - start, latencies, statuses


def _rate(
    n: int, elapsed: float, latencies: list[float], statuses: dict[int, int]
) -> dict[str, Any]:
    return {
        "commands": n,
        "per_s": round(n / elapsed, 1),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "latency_ms": {k: round(v, 2) for k, v in summary(latencies).items()},
    }


async def qunma(up: dict[str, str], n: int) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {up['api_key']}"}
    issuer = up["issuer_url"]
    connector = aiohttp.TCPConnector(limit=CONNECTIONS)
    async with aiohttp.ClientSession(headers=headers, connector=connector) as http:
        groups = []
        for i in range(GROUPS):
            async with http.post(
                f"{issuer}/v1/groups", json={"name": f"bench {i}", "profile": "wecom_internal"}
            ) as r:
                assert r.status == 201, await r.text()
                groups.append((await r.json())["group_id"])
        codes: list[str] = []

        def issue(i: int) -> Any:
            async def call() -> int:
                async with http.post(
                    f"{issuer}/v1/groups/{groups[i % GROUPS]}/codes", json={}
                ) as r:
                    body = await r.json()
                    if r.status == 201:
                        codes.append(body["code_id"])
                    return r.status

            return call

        def revoke(code_id: str) -> Any:
            async def call() -> int:
                async with http.post(f"{issuer}/v1/codes/{code_id}/revoke", json={}) as r:
                    await r.read()
                    return r.status

            return call

        # Warm up (connections, caches, the planner), then measure.
        await _timed([issue(i) for i in range(200)], CONNECTIONS)
        codes.clear()
        issued = _rate(n, *await _timed([issue(i) for i in range(n)], CONNECTIONS))
        revoked = _rate(n, *await _timed([revoke(c) for c in list(codes)], CONNECTIONS))
    return {"issue": issued, "revoke": revoked}


def _recorder(dsn: str, n: int) -> dict[str, Any]:
    """pyeventsourcing's own application and PostgreSQL recorder, from 8 threads."""
    from eventsourcing.application import Application
    from eventsourcing.domain import Aggregate, event

    class Code(Aggregate):
        @event("Issued")
        def __init__(
            self,
            tenant_id: str,
            group_id: str,
            key_id: str,
            payload: str,
            issued_at: str,
            expires_at: str,
            max_scans: int | None,
            daily_scan_limit: int | None,
            max_members: int,
            verification_mode: str,
            channel: str | None,
        ) -> None:
            self.tenant_id, self.group_id, self.key_id = tenant_id, group_id, key_id
            self.payload, self.issued_at, self.expires_at = payload, issued_at, expires_at
            self.max_scans, self.daily_scan_limit = max_scans, daily_scan_limit
            self.max_members, self.verification_mode = max_members, verification_mode
            self.channel = channel
            self.status = "active"

        @event("Revoked")
        def revoke(self, reason: str | None) -> None:
            self.status = "revoked"

    key = SigningKey.generate()

    class Codes(Application):
        def issue(self, tenant_id: str, group_id: str) -> uuid.UUID:
            now = datetime.now(UTC)
            payload = key.sign(uuid.uuid4().bytes + group_id.encode()).hex()
            code = Code(
                tenant_id=tenant_id,
                group_id=group_id,
                key_id=key.key_id,
                payload=payload,
                issued_at=now.isoformat(),
                expires_at=(now + timedelta(days=7)).isoformat(),
                max_scans=None,
                daily_scan_limit=None,
                max_members=500,
                verification_mode="none",
                channel=None,
            )
            self.save(code)
            return code.id

        def revoke(self, code_id: uuid.UUID) -> None:
            code: Code = self.repository.get(code_id)
            code.revoke(None)
            self.save(code)

    user, rest = dsn.removeprefix("postgresql://").split("@", 1)
    name, _, password = user.partition(":")
    hostport, dbname = rest.split("/", 1)
    host, port = hostport.split(":")
    app = Codes(
        env={
            "PERSISTENCE_MODULE": "eventsourcing.postgres",
            "POSTGRES_DBNAME": dbname,
            "POSTGRES_HOST": host,
            "POSTGRES_PORT": port,
            "POSTGRES_USER": name,
            "POSTGRES_PASSWORD": password,
            "POSTGRES_POOL_SIZE": str(THREADS),
            "POSTGRES_MAX_OVERFLOW": "0",
            "CREATE_TABLE": "y",
        }
    )
    tenant = str(uuid.uuid4())
    groups = [str(uuid.uuid4()) for _ in range(GROUPS)]

    def timed(fn: Any, items: list[Any]) -> tuple[float, list[float], dict[int, int], list[Any]]:
        latencies: list[float] = []
        results: list[Any] = []

        def one(item: Any) -> None:
            sent = time.perf_counter()
            results.append(fn(item))
            latencies.append((time.perf_counter() - sent) * 1000)

        start = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            list(pool.map(one, items))
        return time.perf_counter() - start, latencies, {200: len(items)}, results

    try:
        timed(lambda i: app.issue(tenant, groups[i % GROUPS]), list(range(200)))  # warm up
        elapsed, lat, st, ids = timed(
            lambda i: app.issue(tenant, groups[i % GROUPS]), list(range(n))
        )
        issued = _rate(n, elapsed, lat, st)
        elapsed, lat, st, _ = timed(app.revoke, ids)
        revoked = _rate(n, elapsed, lat, st)
    finally:
        app.close()
    return {"issue": issued, "revoke": revoked}


async def recorder(up: dict[str, str], n: int) -> dict[str, Any]:
    base = up["issuer_database_url"]
    conn = await asyncpg.connect(base)
    try:
        await conn.execute("DROP DATABASE IF EXISTS es_bench")
        await conn.execute("CREATE DATABASE es_bench")
    finally:
        await conn.close()
    dsn = base.rsplit("/", 1)[0] + "/es_bench"
    return await asyncio.to_thread(_recorder, dsn, n)


async def main() -> None:
    args = parser(__doc__ or "").parse_args()
    n = 1_000 if args.quick else 5_000
    env = {
        "QUNMA_RATE_LIMIT_PER_IP": "0",
        "QUNMA_RATE_LIMIT_PER_USER": "0",
        "QUNMA_RATE_LIMIT_PER_KEY": "0",
        "QUNMA_RATE_LIMIT_PER_TENANT": "0",
    }
    async with qunma_up(env) as up:
        ours = await qunma(up, n)
        print(f"qunma: {ours}", flush=True)
        theirs = await recorder(up, n)
        print(f"pyeventsourcing: {theirs}", flush=True)
    figures = {
        "qunma": ours,
        "pyeventsourcing": theirs,
        "ratio_issue": round(ours["issue"]["per_s"] / theirs["issue"]["per_s"], 3),
        "ratio_revoke": round(ours["revoke"]["per_s"] / theirs["revoke"]["per_s"], 3),
    }
    print(f"issue {figures['ratio_issue']}x, revoke {figures['ratio_revoke']}x")
    report(
        "commands",
        {
            "figures": figures,
            "settings": {
                "qunma_connections": CONNECTIONS,
                "groups": GROUPS,
                "pyeventsourcing_threads": THREADS,
                "cpus": os.cpu_count(),
            },
        },
        args,
    )


if __name__ == "__main__":
    asyncio.run(main())
