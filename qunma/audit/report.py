"""`qunma audit report`: who issued, rotated and revoked what; scans, joins and members,
from the logs alone (names revealed where the redeemer's KEK opens their keys)."""

from __future__ import annotations

import argparse
import sys
from collections.abc import AsyncIterator
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path

import asyncpg

from qunma.audit.terminal import JSON
from qunma.stack_env import redeemer_kek
from shared import config
from shared.crypto.kek import KekError
from shared.events import Envelope, Event, UnknownEventType
from shared.events.envelope import decode_envelope


def instant(text: str) -> datetime:
    try:
        at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None
    return at if at.tzinfo else at.replace(tzinfo=UTC)


async def _events(
    settings: config.Settings, file: Path | None
) -> AsyncIterator[tuple[Envelope, Event]]:
    """Every event of both logs: each partition in order, partitions interleaved."""
    from shared.audit.sources import audit_consumer, file_records, read_header, read_partitions

    logs = {
        settings.issuer_topic: settings.partitions,
        settings.redeemer_topic: settings.partitions,
    }
    if file is not None:
        header = read_header(file)
        parts = {(log, p) for log, n in header.partitions.items() for p in range(n)}
        for _, items in file_records(file, parts):
            for body, _, _ in items:
                envelope = decode_envelope(body)
                with suppress(UnknownEventType):
                    yield envelope, envelope.event()
        return
    consumer = audit_consumer(settings.kafka, "audit-report")
    await consumer.start()
    try:
        parts_list = [(log, p) for log, n in logs.items() for p in range(n)]
        async for _, items in read_partitions(consumer, parts_list):
            for body, _, _ in items:
                envelope = decode_envelope(body)
                with suppress(UnknownEventType):
                    yield envelope, envelope.event()
    finally:
        await consumer.stop()


async def command(args: argparse.Namespace, settings: config.Settings) -> int:
    from services.redeemer.projections.replay import KeyRing
    from shared.audit.report import Filters, ReportBuilder
    from shared.audit.report_render import page, text

    reveal = None
    kek = redeemer_kek(args.env)
    if kek is not None and settings.redeemer_database_url:
        try:
            reveal = (await KeyRing.load(settings.redeemer_database_url, kek)).reveal
        except (OSError, TimeoutError, asyncpg.PostgresError, KekError) as exc:
            print(f"qunma: person keys not read ({exc}): values stay [sealed]", file=sys.stderr)
    builder = ReportBuilder(Filters(args.tenant, args.group, args.code, args.as_of), reveal)
    async for envelope, event in _events(settings, args.file):
        builder.add(envelope, event)
    doc = builder.result()
    if args.html:
        args.html.write_text(page(doc), encoding="utf-8")
    if args.json:
        sys.stdout.buffer.write(JSON.encode(doc) + b"\n")
    else:
        print(text(doc), end="")
        if args.html:
            print(f"page written to {args.html}")
    return 0
