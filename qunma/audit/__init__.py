"""`qunma audit …`: verify, export, prove (and replay, report) for auditors, one module
per subcommand.

Settings come from QUNMA_* like the services'. Next to a `qunma up` stack they default to
what it wrote in its data directory (`up.json`, `secrets.json`), so `qunma audit verify`
works from another shell without exporting anything.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import uuid
from pathlib import Path
from typing import Any

import aiohttp

from qunma.audit import export, prove, replay, report, verify
from qunma.audit.report import instant
from qunma.stack_env import stack_env
from shared import config


def add_parsers(commands: Any) -> None:
    audit = commands.add_parser("audit", help="verify, export and prove the event logs")
    audit.add_argument(
        "--data-dir",
        type=Path,
        default=Path(".qunma"),
        help="a `qunma up` data directory to take settings from (default .qunma)",
    )
    sub = audit.add_subparsers(dest="audit_command", required=True)

    verify = sub.add_parser("verify", help="replay both logs and check every hash and signature")
    verify.add_argument("--file", type=Path, help="verify an export instead of the topics")
    verify.add_argument("--json", action="store_true", help="print a JSON summary")
    verify.add_argument(
        "--jwks",
        action="append",
        default=[],
        metavar="URL_OR_FILE",
        help="pin log keys from this JWKS (repeatable); default for topics: both services'",
    )
    verify.add_argument(
        "--tolerate-duplicates",
        action="store_true",
        help="accept exact re-deliveries (a run sent again by a restarted relay, or records "
        "sent early into a wiped broker) and count them",
    )
    verify.add_argument(
        "--workers", type=int, help="processes (default: one per CPU; one for a small log)"
    )
    verify.add_argument(
        "--grace",
        type=float,
        default=60.0,
        help="seconds beyond QUNMA_CHECKPOINT_SECONDS before an uncovered tail is truncation",
    )
    verify.add_argument("--token", help="audit API key or log token, for the producers' heads")
    verify.add_argument(
        "--topic",
        action="append",
        default=[],
        metavar="LOG=TOPIC",
        help="read LOG from TOPIC (a mirror of it, say); repeatable",
    )

    export = sub.add_parser("export", help="write both logs to a JSON Lines file")
    export.add_argument("--out", type=Path, required=True)

    replay = sub.add_parser(
        "replay", help="rebuild the redeemer's state from the logs and diff it with the live one"
    )
    replay.add_argument("--into", required=True, metavar="DSN", help="an empty database")
    replay.add_argument("--json", action="store_true")

    report = sub.add_parser(
        "report", help="who issued, rotated and revoked what; scans, joins and members"
    )
    report.add_argument("--as-of", type=instant, help="the logs as they stood then (ISO 8601)")
    report.add_argument("--tenant", type=uuid.UUID)
    report.add_argument("--group", type=uuid.UUID)
    report.add_argument("--code", type=uuid.UUID)
    report.add_argument("--file", type=Path, help="read an export instead of the topics")
    report.add_argument("--json", action="store_true", help="the report as JSON")
    report.add_argument("--html", type=Path, metavar="FILE", help="also write a page with charts")

    prove = sub.add_parser("prove", help="fetch and check an event's inclusion proof")
    prove.add_argument("event_id", type=uuid.UUID)
    prove.add_argument("--json", action="store_true")
    prove.add_argument("--token", help="audit API key (default: the log token)")


def run(args: argparse.Namespace) -> int:
    env = stack_env(args.data_dir)
    args.env = env
    try:
        settings = config.from_env(env)
    except config.ConfigError as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
    commands = {
        "verify": verify.command,
        "export": export.command,
        "prove": prove.command,
        "replay": replay.command,
        "report": report.command,
    }
    command = commands[args.audit_command]
    try:
        return asyncio.run(command(args, settings))
    except (ValueError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
