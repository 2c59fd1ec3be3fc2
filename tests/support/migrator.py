"""A process that migrates a database the way a starting replica does.

    python -m tests.support.migrator DSN

Connects, prints "ready", waits for a line on stdin (so that several processes start
migrating at the same instant), then applies the redeemer's migrations; exit 0 when done.
"""

from __future__ import annotations

import asyncio
import sys

import asyncpg

from services.redeemer.schema import functions, migrations
from shared.store import migrate


async def main() -> int:
    conn = await asyncpg.connect(sys.argv[1])
    try:
        print("ready", flush=True)
        await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        await migrate.apply(conn, migrations(), functions())
    finally:
        await conn.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
