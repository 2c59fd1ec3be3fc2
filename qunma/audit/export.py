"""`qunma audit export`: both logs as one JSON Lines file an auditor can take away."""

from __future__ import annotations

import argparse
import sys

from qunma.audit.terminal import Progress
from shared import config


async def command(args: argparse.Namespace, settings: config.Settings) -> int:
    from shared.audit.export import export

    progress = Progress(sys.stderr.isatty(), "exporting")
    done = 0

    def tell(n: int) -> None:
        nonlocal done
        done += n
        progress(done)

    try:
        count = await export(
            settings.kafka,
            {
                settings.issuer_topic: settings.partitions,
                settings.redeemer_topic: settings.partitions,
            },
            args.out,
            settings.checkpoint_seconds,
            tell,
        )
    finally:
        progress.close()
    print(f"{count:,} records written to {args.out}")
    return 0
