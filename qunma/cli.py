"""The `qunma` command: `up`, `issuer`, `redeemer`, `tenant create`, `audit …`, `forget`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from pathlib import Path

from qunma.stack_env import stack_env
from shared import config


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="qunma", description="Group-invite QR codes.")
    commands = parser.add_subparsers(dest="command", required=True)

    up = commands.add_parser("up", help="start PostgreSQL, the broker, the issuer and the redeemer")
    up.add_argument("--data-dir", type=Path, default=Path(".qunma"))
    up.add_argument("--issuer-port", type=int, default=8081)
    up.add_argument("--redeemer-port", type=int, default=8082)
    up.add_argument("--pg-port", type=int, default=0, help="0 picks a free port")
    up.add_argument("--kafka-port", type=int, default=0, help="0 picks a free port")

    for name in ("issuer", "redeemer"):
        service = commands.add_parser(name, help=f"run the {name} alone (settings from QUNMA_*)")
        service.add_argument("--host")
        service.add_argument("--port", type=int)

    tenant = commands.add_parser("tenant", help="manage tenants")
    tenant_commands = tenant.add_subparsers(dest="tenant_command", required=True)
    create = tenant_commands.add_parser(
        "create", help="create a tenant and print its first API key"
    )
    create.add_argument("--name", required=True)
    create.add_argument(
        "--data-dir", type=Path, default=Path(".qunma"), help="a `qunma up` data directory"
    )

    forget = commands.add_parser(
        "forget", help="erase a person's data: destroy their keys (as DELETE /v1/people/…)"
    )
    forget.add_argument("--tenant", type=uuid.UUID, required=True)
    forget.add_argument("--user-id", required=True)
    forget.add_argument(
        "--data-dir", type=Path, default=Path(".qunma"), help="a `qunma up` data directory"
    )

    from qunma import audit

    audit.add_parsers(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.command == "audit":
        from qunma import audit

        return audit.run(args)
    if args.command == "forget":
        from qunma.forget_cli import run as forget

        return forget(args)
    try:
        if args.command == "tenant":
            # Beside a `qunma up` stack, from another shell: its settings, as audit has.
            settings = config.from_env(stack_env(args.data_dir))
        else:
            settings = config.from_env()
    except config.ConfigError as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
    from shared.service import configure_logging, serve

    configure_logging(settings.log_level)
    try:
        if args.command == "up":
            from qunma.up import UpOptions, run_up

            return asyncio.run(
                run_up(
                    UpOptions(
                        args.data_dir,
                        args.issuer_port,
                        args.redeemer_port,
                        args.pg_port,
                        args.kafka_port,
                    )
                )
            )
        if args.command == "issuer":
            from services.issuer.app import create_app as create_issuer

            serve(
                create_issuer(settings),
                args.host or settings.issuer_host,
                args.port or settings.issuer_port,
            )
            return 0
        if args.command == "redeemer":
            from services.redeemer.app import create_app as create_redeemer

            serve(
                create_redeemer(settings),
                args.host or settings.redeemer_host,
                args.port or settings.redeemer_port,
            )
            return 0
        if args.command == "tenant" and args.tenant_command == "create":
            from services.issuer.provision import provision_tenant

            created = asyncio.run(provision_tenant(settings, args.name))
            print(
                json.dumps(
                    {
                        "tenant_id": str(created.tenant_id),
                        "key_id": str(created.key_id),
                        "api_key": created.api_key,
                    }
                )
            )
            return 0
    except config.ConfigError as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
    return 2
