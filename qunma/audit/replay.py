"""`qunma audit replay`: rebuild the redeemer's state from the logs into an empty database
and diff it with the live one."""

from __future__ import annotations

import argparse
import json
import sys

from qunma.audit.terminal import Progress
from qunma.stack_env import redeemer_kek
from shared import config
from shared.crypto.kek import KekError
from shared.db import mask_dsn


async def command(args: argparse.Namespace, settings: config.Settings) -> int:
    from services.redeemer.projections.replay import KeyRing, diff, rebuild, snapshot

    live = config.require(settings.redeemer_database_url, "QUNMA_REDEEMER_DATABASE_URL")
    snap = await snapshot(live, settings.issuer_topic)
    try:
        keys = await KeyRing.load(live, redeemer_kek(args.env))
    except KekError as exc:
        # Only names depend on it: the comparison is by pseudonym.
        print(f"qunma: {exc}; user ids in the rebuilt tables stay unread", file=sys.stderr)
        keys = KeyRing(None, {})
    progress = Progress(sys.stderr.isatty() and not args.json, "replaying")
    done = 0

    def tell(n: int) -> None:
        nonlocal done
        done += n
        progress(done)

    try:
        rebuilt = await rebuild(
            args.into,
            settings.kafka,
            settings.issuer_topic,
            settings.redeemer_topic,
            snap,
            keys.reveal,
            tell,
        )
    finally:
        progress.close()
    lines = diff(snap.tables, rebuilt)
    rows = {table: len(found) for table, found in rebuilt.items()}
    summary = {
        "events": done,
        "issuer_positions": snap.issuer,
        "redeemer_positions": snap.redeemer,
        "rows": rows,
        "differences": lines,
    }
    if args.json:
        print(json.dumps(summary, default=str))
    else:
        print(
            f"replayed {done:,} events into {mask_dsn(args.into)}: "
            + ", ".join(f"{t} {n}" for t, n in rows.items())
        )
        for line in lines:
            print(f"DIFFERENT {line}")
        print(f"{len(lines)} difference(s)")
    return 0 if not lines else 1
