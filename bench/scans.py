"""Scans per second and latency against two redeemer replicas, beside the database's floor.

    python -m bench.scans [--quick] [--baseline bench/results/FILE.json]

1. `qunma up` starts the stack (rate limits off); a second redeemer replica starts on its
   own port with the same settings. One group and code are made for each offered rate.
2. For each offered rate, an open-loop generator sends scans (each by a new person, so each
   reserves a seat and hands out a token: the full accepted path) for a fixed time,
   alternating replicas, and records each request's latency.
3. The floor: `pgbench` (shipped with the embedded PostgreSQL) runs, against the same
   database, the same SQL a scan runs: the code's context, and the one call that issues the
   token, records the scan fact and the event, counts the scan and reserves the seat.
   (The API key and the signing key are cached in the redeemer.) The ratio is scans/s over
   those transactions/s.

The bench lifts the test groups' member cap in the redeemer's database so that every scan
takes the accepted path (a full group would answer early, which is cheaper).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

from bench.common import parser, qunma_up, report, summary
from shared.crypto.api_keys import hash_key
from shared.runtime.children import free_port
from shared.runtime.postgres import EmbeddedPostgres

CONNECTIONS = 256


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


async def _code(http: aiohttp.ClientSession, up: dict[str, str]) -> dict[str, Any]:
    async with http.post(
        f"{up['issuer_url']}/v1/groups", json={"name": "bench", "profile": "qq"}
    ) as r:
        group = await r.json()
    async with http.post(
        f"{up['issuer_url']}/v1/groups/{group['group_id']}/codes", json={"max_scans": None}
    ) as r:
        code: dict[str, Any] = await r.json()
    conn = await asyncpg.connect(up["redeemer_database_url"])
    try:
        async with asyncio.timeout(30):
            while not await conn.fetchval(
                "SELECT 1 FROM codes WHERE code_id = $1", uuid.UUID(code["code_id"])
            ):
                await asyncio.sleep(0.05)
        await conn.execute(
            "UPDATE groups SET max_members = 1000000000 WHERE group_id = $1",
            uuid.UUID(group["group_id"]),
        )
    finally:
        await conn.close()
    return code


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


def _floor_script(
    up: dict[str, str], code: dict[str, Any], api_key: str, context_sql: str, transaction: list[str]
) -> str:
    fill = {
        "CODE": code["code_id"],
        "GROUP": code["group_id"],
        "KEYHASH": hash_key(api_key),
        "KEYID": code["key_id"],
    }
    body = "\n".join(
        [
            "\\set u random(1, 2000000000)",
            # The API key and the signing key are cached in the redeemer: a scan does not
            # query them, so neither does the floor.
            context_sql,
            *transaction,
        ]
    )
    for name, value in fill.items():
        body = body.replace(name, value)
    return body + "\n"


def _bind(sql: str, values: dict[int, str]) -> str:
    """A statement with each $n replaced by the SQL expression a scan would bind there."""
    return re.sub(r"\$(\d+)", lambda m: values[int(m.group(1))], sql.strip()) + ";"


def floor_sql(tenant_id: str, code_id: str, group_id: str) -> tuple[str, list[str]]:
    """The scan's own statements (services/redeemer/application/scanner.py and tokens.py),
    with the values it binds."""
    from services.redeemer.application import scanner, tokens

    user = "('pg-' || :client_id || '-' || :u)"
    # What a first scan by a new person seals (services/redeemer/application/people.py): its size.
    sealed = {"k": "0123456789abcdef", "c": "A" * 59}
    data = json.dumps(
        {
            "code_id": code_id,
            "daily_capped": False,
            "day": None,
            "device": None,
            "display_name": None,
            "group_id": group_id,
            "ip": sealed,
            "live_code_id": None,
            "location": None,
            "person": "p_" + "0" * 32,
            "replaces_scan_id": None,
            "scan_id": "00000000-0000-0000-0000-000000000000",
            "token_expires_at": "2030-01-01T00:00:00Z",
            "user": sealed,
        },
        separators=(",", ":"),
        sort_keys=True,
    )
    tenant, group, code = f"'{tenant_id}'::uuid", f"'{group_id}'::uuid", f"'{code_id}'::uuid"
    context = _bind(scanner.CONTEXT, {1: code, 2: user, 3: "current_date"})
    event = ", ".join(
        [
            "gen_random_uuid()",
            "'ScanAccepted'",
            "2",
            tenant,
            "'scan:' || gen_random_uuid()",
            "1",
            "now()",
            f"'{group_id}'",
            "0",
            # hex: pgbench would read the JSON's colons as variables
            f"decode('{data.encode().hex()}', 'hex')",
            "'bench'",
        ]
    )
    accept = _bind(
        tokens.ACCEPT,
        {
            1: "sha256(random()::text::bytea)",
            2: "gen_random_uuid()",
            3: tenant,
            4: group,
            5: code,
            6: "NULL::uuid",
            7: user,
            8: "NULL",
            9: "'none'",
            10: "false",
            11: "now() + interval '15 seconds'",
            12: "NULL",
            13: "now()",
            14: "NULL::uuid",
            15: "current_date",
            16: "NULL::int",
            17: "NULL::int",
            # a new person and key, as every scan by a new person makes them
            18: "('p-' || :client_id || '-' || :u)",
            19: "('k-' || :client_id || '-' || :u)",
            20: "sha256(random()::text::bytea) || sha256(random()::text::bytea)",
            21: "'personal'",
            22: "current_date",
            23: "true",
            24: "true",
            25: f"ROW({event})::qunma_event",
        },
    )
    return context, [accept]


async def floor(
    up: dict[str, str], code: dict[str, Any], clients: int, seconds: int
) -> dict[str, Any]:
    conn = await asyncpg.connect(up["redeemer_database_url"])
    try:
        tenant = str(
            await conn.fetchval(
                "SELECT tenant_id FROM codes WHERE code_id = $1", uuid.UUID(code["code_id"])
            )
        )
    finally:
        await conn.close()
    context, transaction = floor_sql(tenant, code["code_id"], code["group_id"])
    script = _floor_script(up, code, up["api_key"], context, transaction)
    path = Path(tempfile.mkdtemp()) / "scan.sql"
    path.write_text(script)
    match = re.match(r"postgresql://([^@]+)@([^:/]+):(\d+)/(\w+)", up["redeemer_database_url"])
    assert match, up["redeemer_database_url"]
    user, host, port, database = match.groups()
    result = await asyncio.to_thread(
        subprocess.run,
        [
            str(EmbeddedPostgres.binary("pgbench")),
            "-n",
            "-M",
            "prepared",
            "-c",
            str(clients),
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(path),
            "-h",
            host,
            "-p",
            port,
            "-U",
            user.split(":")[0],
            database,
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    tps = float(re.search(r"tps = ([\d.]+)", result.stdout).group(1))  # type: ignore[union-attr]
    latency = re.search(r"latency average = ([\d.]+) ms", result.stdout)
    return {
        "clients": clients,
        "seconds": seconds,
        "transactions_per_s": round(tps, 1),
        "latency_avg_ms": float(latency.group(1)) if latency else None,
    }


async def main() -> None:
    args = parser(__doc__ or "").parse_args()
    rates, seconds = (
        ([100, 300], 3.0) if args.quick else ([100, 200, 300, 400, 450, 500, 600, 800], 6.0)
    )
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
                    code = await _code(http, up)
                    replicas = [up["redeemer_url"], second_url]
                    # Warm up at this rate first (connections, caches), then measure.
                    await offered(http, replicas, code["payload"], rate, 1.0)
                    steps.append(await offered(http, replicas, code["payload"], rate, seconds))
                    print(f"offered {rate}/s: {steps[-1]}", flush=True)
                    await asyncio.sleep(1)
                floor_code = await _code(http, up)
                # The floor is the best the database does: try a few client counts.
                floors = []
                for clients in (4, 8, 16):
                    await _quiet(up)
                    floors.append(await floor(up, floor_code, clients=clients, seconds=8))
                floor_result = max(floors, key=lambda f: f["transactions_per_s"])
                floor_result["tried"] = [
                    {"clients": f["clients"], "transactions_per_s": f["transactions_per_s"]}
                    for f in floors
                ]
        finally:
            second.terminate()
            await second.wait()
    sustained = [
        s
        for s in steps
        if s["statuses"].get("200") == int(s["offered_per_s"] * seconds)
        and s["achieved_per_s"] >= 0.95 * s["offered_per_s"]
        and s["latency_ms"]["p99"] < 500
    ]
    best = max((s["achieved_per_s"] for s in sustained), default=0.0)
    figures = {
        "rates": steps,
        "sustained_scans_per_s": best,
        "floor": floor_result,
        "ratio_scans_to_floor": round(best / floor_result["transactions_per_s"], 3),
    }
    report(
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


if __name__ == "__main__":
    asyncio.run(main())
