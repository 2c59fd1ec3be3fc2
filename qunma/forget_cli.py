"""`qunma forget --tenant T --user-id U`: erasure from an operator's shell.

The same as `DELETE /v1/people/{user_id}` with an admin key, run against the redeemer's
database directly (QUNMA_REDEEMER_DATABASE_URL, or what `qunma up` wrote down); the running
redeemer's relay seals and publishes the `PersonForgotten` event.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys

from qunma.stack_env import redeemer_kek_text, stack_env
from shared import config
from shared.crypto.kek import Kek, KekError
from shared.crypto.user_index import UserIndex
from shared.db import create_pool, migrate_database
from shared.http.problems import Problem
from shared.store.actor import acting_as
from shared.store.log_setup import ensure_log
from shared.store.unit_of_work import Outbox


async def _forget(args: argparse.Namespace, settings: config.Settings, kek: Kek) -> int:
    from services.redeemer.application.erasure import forget
    from services.redeemer.schema import functions, migrations

    dsn = config.require(settings.redeemer_database_url, "QUNMA_REDEEMER_DATABASE_URL")
    await migrate_database(dsn, migrations(), functions())
    pool = await create_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await ensure_log(conn, settings.redeemer_log)
        with acting_as("cli:forget"):
            try:
                done = await forget(
                    Outbox(pool, settings.redeemer_log),
                    UserIndex.from_kek(kek),
                    args.tenant,
                    args.user_id,
                )
            except Problem as problem:
                print(f"qunma: {problem.detail}", file=sys.stderr)
                return 1
    finally:
        await pool.close()
    print(
        json.dumps(
            {
                "tenant_id": str(args.tenant),
                "user_id": args.user_id,
                "person": done.person,
                "keys_destroyed": done.keys_destroyed,
            }
        )
    )
    return 0


def run(args: argparse.Namespace) -> int:
    try:
        env = stack_env(args.data_dir)
        settings = config.from_env(env)
        # The redeemer's KEK keys the index its erasure finds rows by.
        kek = Kek.from_text(config.require(redeemer_kek_text(env), "QUNMA_REDEEMER_KEK"))
        return asyncio.run(_forget(args, settings, kek))
    except (config.ConfigError, KekError) as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
