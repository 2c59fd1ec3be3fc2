"""A writer process for race tests: appends events to the real store in one transaction.

    python -m tests.support.writer DSN LOG PARTITIONS STREAM --events N [--hold] [--delay S]

With --hold it prints "inserted" once its rows are in, then waits for a line on stdin
before committing. Exit 0 when committed, 3 on a concurrency conflict.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid

import asyncpg

from shared.clock import utcnow
from shared.events.issuer import GroupCreated
from shared.ids import uuid7
from shared.store.eventstore import ConcurrencyConflict, LogSpec, Pending, append


async def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("dsn")
    parser.add_argument("log")
    parser.add_argument("partitions", type=int)
    parser.add_argument("stream")
    parser.add_argument("--events", type=int, default=5)
    parser.add_argument("--first-version", type=int, default=1)
    parser.add_argument("--hold", action="store_true")
    parser.add_argument("--delay", type=float, default=0.0)
    args = parser.parse_args()
    log = LogSpec(args.log, args.partitions)
    conn = await asyncpg.connect(args.dsn)
    try:
        tx = conn.transaction()
        await tx.start()
        pending = [
            Pending(
                GroupCreated(group_id=uuid7(), name=f"{args.stream}-{i}", max_members=10),
                args.stream,
                args.first_version + i,
                uuid.UUID(int=1),
                args.stream,
            )
            for i in range(args.events)
        ]
        try:
            await append(conn, log, pending, utcnow())
        except ConcurrencyConflict:
            await tx.rollback()
            print("conflict", flush=True)
            return 3
        if args.hold:
            print("inserted", flush=True)
            await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        elif args.delay:
            await asyncio.sleep(args.delay)
        await tx.commit()
        print("committed", flush=True)
        return 0
    finally:
        await conn.close()


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
