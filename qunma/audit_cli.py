"""`qunma audit …`: verify, export, prove (and replay, report) for auditors.

Settings come from QUNMA_* like the services'. Next to a `qunma up` stack they default to
what it wrote in its data directory (`up.json`, `secrets.json`), so `qunma audit verify`
works from another shell without exporting anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import msgspec

from qunma.stack_env import redeemer_kek_text, stack_env
from shared import config
from shared.audit.keys import Pins, merge, pins_from_jwks
from shared.crypto.kek import Kek, KekError
from shared.db import mask_dsn
from shared.events import Envelope, Event, UnknownEventType
from shared.events.envelope import decode_envelope

JSON = msgspec.json.Encoder()


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
    report.add_argument("--as-of", type=_instant, help="the logs as they stood then (ISO 8601)")
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


async def fetch_pins(urls: Iterable[str], timeout: float = 5.0) -> tuple[Pins, list[str]]:
    """Pins from JWKS URLs or files; also the sources that could not be read, and why."""
    pins: Pins = {}
    failed: list[str] = []
    async with aiohttp.ClientSession() as session:
        for url in urls:
            try:
                if url.startswith(("http://", "https://")):
                    async with session.get(
                        url, timeout=aiohttp.ClientTimeout(total=timeout)
                    ) as resp:
                        resp.raise_for_status()
                        document = await resp.json(content_type=None)
                else:
                    # A small local file; reading it blocks for microseconds.
                    document = json.loads(Path(url).read_text())  # noqa: ASYNC240
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
                failed.append(f"{url}: {exc or type(exc).__name__}")
                continue
            merge(pins, pins_from_jwks(document))
    return pins, failed


class _Progress:
    """A one-line progress bar on a terminal; silent otherwise."""

    def __init__(self, enabled: bool, what: str) -> None:
        self.enabled = enabled
        self.what = what
        self.started = time.monotonic()
        self.shown = 0.0

    def __call__(self, done: int, total: int | None = None) -> None:
        now = time.monotonic()
        if not self.enabled or now - self.shown < 0.1:
            return
        self.shown = now
        rate = done / max(now - self.started, 1e-9)
        if total:
            width = 30
            filled = min(width, int(width * done / total))
            bar = "█" * filled + "·" * (width - filled)
            text = f"{self.what} {bar} {done:,}/{total:,} {rate:,.0f}/s"
        else:
            text = f"{self.what} {done:,} {rate:,.0f}/s"
        print(f"\r{text}", end="", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.enabled:
            print("\r\033[K", end="", file=sys.stderr, flush=True)


async def _heads(
    session: aiohttp.ClientSession, urls: list[str], token: str
) -> tuple[dict[tuple[str, int], int], list[str]]:
    heads: dict[tuple[str, int], int] = {}
    notes: list[str] = []
    for url in urls:
        try:
            async with session.get(
                f"{url}/v1/log/heads",
                headers={"Authorization": f"Bearer {token}"},
                timeout=aiohttp.ClientTimeout(total=5),
            ) as resp:
                resp.raise_for_status()
                body = await resp.json()
        except (aiohttp.ClientError, TimeoutError) as exc:
            notes.append(f"{url}/v1/log/heads: {exc or type(exc).__name__}")
            continue
        for p in body["partitions"]:
            heads[(body["log"], p["partition"])] = p["published_position"]
    return heads, notes


async def _verify(args: argparse.Namespace, settings: config.Settings) -> int:
    from shared.audit.run import (
        FileSource,
        KafkaSource,
        Source,
        VerifyOptions,
        verify,
    )

    notes: list[str] = []
    heads: dict[tuple[str, int], int] = {}
    jwks = list(args.jwks)
    source: Source
    if args.file:
        source = FileSource(args.file)
    else:
        source = KafkaSource(
            settings.kafka,
            {
                settings.issuer_topic: settings.partitions,
                settings.redeemer_topic: settings.partitions,
            },
            dict(_mapping(item) for item in args.topic),
        )
        urls = [settings.issuer_url, settings.redeemer_url]
        if not jwks:
            jwks = [f"{url}/.well-known/jwks.json" for url in urls]
        token = args.token or settings.log_token
        if token:
            # Read before the topics: what was published by now must be in them.
            async with aiohttp.ClientSession() as session:
                heads, failed = await _heads(session, urls, token)
            notes += [f"producer head not read: {f}" for f in failed]
        else:
            notes.append("no --token or QUNMA_LOG_TOKEN: the producers' heads were not read")
    pins, failed = await fetch_pins(jwks) if jwks else ({}, [])
    notes += [f"keys not pinned from {f}" for f in failed]
    progress = _Progress(sys.stderr.isatty() and not args.json, "verifying")
    options = VerifyOptions(
        tolerate_duplicates=args.tolerate_duplicates,
        checkpoint_seconds=settings.checkpoint_seconds,
        grace=args.grace,
        pins=pins,
        workers=args.workers,
        producer_heads=heads,
    )
    try:
        report = await verify(source, options, progress)
    finally:
        progress.close()
    report.notes[:0] = notes
    if args.json:
        sys.stdout.buffer.write(JSON.encode(report) + b"\n")
    else:
        _print_report(report)
    return 0 if report.ok else 1


def _mapping(item: str) -> tuple[str, str]:
    log, sep, topic = item.partition("=")
    if not sep or not log or not topic:
        raise ValueError(f"--topic takes LOG=TOPIC, not {item!r}")
    return log, topic


def _print_report(report: Any) -> None:
    print(
        f"{report.source}: {report.events:,} records in {report.seconds:.1f} s "
        f"({report.events_per_second:,.0f}/s, {report.workers} worker(s))"
    )
    bad = {(f.log, f.partition): f for f in report.findings}
    for s in report.partitions:
        state = "TAMPERED" if (s.log, s.partition) in bad else "ok"
        extra = f", {s.duplicates_tolerated} re-delivered" if s.duplicates_tolerated else ""
        print(
            f"  {s.log}[{s.partition}]: {s.position:,} events, {s.checkpoints} checkpoints"
            f"{extra}, head {s.head[:16]}… {state}"
        )
    for note in report.notes:
        print(f"  note: {note}")
    for f in report.findings:
        where = f" ({f.where})" if f.where else ""
        print(f"TAMPERED {f.log}[{f.partition}] position {f.position}{where}: {f.kind}: {f.detail}")
    print("log verified" if report.ok else "log NOT verified")


async def _export(args: argparse.Namespace, settings: config.Settings) -> int:
    from shared.audit.export import export

    progress = _Progress(sys.stderr.isatty(), "exporting")
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


async def _prove(args: argparse.Namespace, settings: config.Settings) -> int:
    from shared.audit.proofcheck import InclusionDoc, check_inclusion

    token = args.token or settings.log_token
    if not token:
        print("qunma: give --token (an audit API key) or set QUNMA_LOG_TOKEN", file=sys.stderr)
        return 2
    async with aiohttp.ClientSession() as session:
        for url in (settings.issuer_url, settings.redeemer_url):
            async with session.get(
                f"{url}/v1/log/proof",
                params={"event_id": str(args.event_id)},
                headers={"Authorization": f"Bearer {token}"},
            ) as resp:
                raw = await resp.read()
                if resp.status == 404:
                    continue
                if resp.status != 200:
                    problem = json.loads(raw)
                    print(f"qunma: {url}: {problem.get('detail', raw.decode())}", file=sys.stderr)
                    return 1
            doc = msgspec.json.decode(raw, type=InclusionDoc)
            pins, failed = await fetch_pins([f"{url}/.well-known/jwks.json"])
            problems = [f"keys not read: {f}" for f in failed]
            problems += check_inclusion(doc, pins.get(doc.log, {}))
            result = {
                "ok": not problems,
                "event_id": str(args.event_id),
                "log": doc.log,
                "partition": doc.partition,
                "position": doc.position,
                "tree_size": doc.checkpoint.tree_size,
                "tree_root": doc.checkpoint.tree_root,
                "checkpoint": doc.checkpoint.event_id,
                "key_id": doc.checkpoint.key_id,
                "problems": problems,
            }
            if args.json:
                print(json.dumps(result))
            else:
                print(
                    f"{doc.log}[{doc.partition}] position {doc.position}: "
                    + (
                        f"included in the tree of {doc.checkpoint.tree_size} signed by key "
                        f"{doc.checkpoint.key_id} (checkpoint {doc.checkpoint.event_id})"
                        if not problems
                        else "NOT proven"
                    )
                )
                for problem in problems:
                    print(f"  {problem}")
            return 0 if not problems else 1
    print(f"qunma: no sealed event {args.event_id} in either log", file=sys.stderr)
    return 1


def _instant(text: str) -> datetime:
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


async def _report(args: argparse.Namespace, settings: config.Settings) -> int:
    from services.redeemer.replay import KeyRing
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


def redeemer_kek(env: Mapping[str, str]) -> Kek | None:
    """The redeemer's KEK, to open person keys: QUNMA_REDEEMER_KEK (what `qunma up` and
    compose call it), or QUNMA_KEK in the redeemer's own environment."""
    text = redeemer_kek_text(env)
    return Kek.from_text(text) if text else None


async def _replay(args: argparse.Namespace, settings: config.Settings) -> int:
    from services.redeemer.replay import KeyRing, diff, rebuild, snapshot

    live = config.require(settings.redeemer_database_url, "QUNMA_REDEEMER_DATABASE_URL")
    snap = await snapshot(live, settings.issuer_topic)
    try:
        keys = await KeyRing.load(live, redeemer_kek(args.env))
    except KekError as exc:
        # Only names depend on it: the comparison is by pseudonym.
        print(f"qunma: {exc}; user ids in the rebuilt tables stay unread", file=sys.stderr)
        keys = KeyRing(None, {})
    progress = _Progress(sys.stderr.isatty() and not args.json, "replaying")
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


def run(args: argparse.Namespace) -> int:
    env = stack_env(args.data_dir)
    args.env = env
    try:
        settings = config.from_env(env)
    except config.ConfigError as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
    commands = {
        "verify": _verify,
        "export": _export,
        "prove": _prove,
        "replay": _replay,
        "report": _report,
    }
    command = commands[args.audit_command]
    try:
        return asyncio.run(command(args, settings))
    except (ValueError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
