"""The database's own ceilings for a hot code, measured with `pgbench` (shipped with the
embedded PostgreSQL) against the same server the stack uses, in the same run.

- `scan_floor`: the scan's own SQL, one transaction per scan: the code's context, then the
  one call that issues the token, records the scan fact and the event, counts the scan and
  reserves the seat (services/redeemer/application/scanner.py and tokens.py).
- `minimal_floor`: the least a one-transaction-per-scan design can do: a conditional UPDATE
  of one hot row, an INSERT of a token and an INSERT of an event, committed. Every such
  transaction holds the hot row's lock across its commit, so this is about 1 / commit
  latency whatever the design around it.
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import tempfile
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from shared.crypto.api_keys import hash_key
from shared.runtime.postgres import EmbeddedPostgres

CLIENTS = (4, 8, 16)  # the floor is the best the database does: a few client counts


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


async def pgbench(dsn: str, script: str, clients: int, seconds: int) -> dict[str, Any]:
    path = Path(tempfile.mkdtemp()) / "floor.sql"
    path.write_text(script)
    match = re.match(r"postgresql://([^@]+)@([^:/]+):(\d+)/(\w+)", dsn)
    assert match, dsn
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


def best(tried: list[dict[str, Any]]) -> dict[str, Any]:
    result = dict(max(tried, key=lambda f: f["transactions_per_s"]))
    result["tried"] = [
        {"clients": f["clients"], "transactions_per_s": f["transactions_per_s"]} for f in tried
    ]
    return result


async def scan_floor(
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
    return await pgbench(up["redeemer_database_url"], script, clients, seconds)


MINIMAL_SETUP = """
DROP SCHEMA IF EXISTS bench_floor CASCADE;
CREATE SCHEMA bench_floor;
CREATE TABLE bench_floor.hot (id integer PRIMARY KEY, used bigint NOT NULL, max bigint NOT NULL);
INSERT INTO bench_floor.hot VALUES (1, 0, 1000000000000);
CREATE TABLE bench_floor.tokens (token_hash bytea PRIMARY KEY, at timestamptz NOT NULL);
CREATE TABLE bench_floor.events (event_id uuid PRIMARY KEY, data bytea NOT NULL);
"""

MINIMAL = """BEGIN;
UPDATE bench_floor.hot SET used = used + 1 WHERE id = 1 AND used < max;
INSERT INTO bench_floor.tokens VALUES (sha256(random()::text::bytea), now());
INSERT INTO bench_floor.events VALUES (gen_random_uuid(), sha256(random()::text::bytea));
END;
"""


async def minimal_floor(dsn: str, clients: int, seconds: int) -> dict[str, Any]:
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(MINIMAL_SETUP)
        result = await pgbench(dsn, MINIMAL, clients, seconds)
        await conn.execute("DROP SCHEMA bench_floor CASCADE")
    finally:
        await conn.close()
    return result
