"""`qunma audit …`: verify, export, prove (and replay, report) for auditors.

Settings come from QUNMA_* like the services'. Next to a `qunma up` stack they default to
what it wrote in its data directory (`up.json`, `secrets.json`), so `qunma audit verify`
works from another shell without exporting anything.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import time
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiohttp
import msgspec

from shared import config
from shared.audit.keys import Pins, merge, pins_from_jwks

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
        help="accept exact re-deliveries of a run of records (a relay restart) and count them",
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

    prove = sub.add_parser("prove", help="fetch and check an event's inclusion proof")
    prove.add_argument("event_id", type=uuid.UUID)
    prove.add_argument("--json", action="store_true")
    prove.add_argument("--token", help="audit API key (default: the log token)")


def stack_env(data_dir: Path, env: Mapping[str, str] | None = None) -> dict[str, str]:
    """The environment, over what a `qunma up` stack in `data_dir` wrote down."""
    merged: dict[str, str] = {}
    up = data_dir / "up.json"
    if up.exists():
        merged.update(json.loads(up.read_text()).get("env", {}))
    found = data_dir / "secrets.json"
    if found.exists():
        secrets = json.loads(found.read_text())
        merged.setdefault("QUNMA_LOG_TOKEN", secrets.get("log_token", ""))
        merged.setdefault("QUNMA_REDEEMER_KEK", secrets.get("redeemer_kek", ""))
    merged.update(os.environ if env is None else env)
    return merged


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


def run(args: argparse.Namespace) -> int:
    env = stack_env(args.data_dir)
    try:
        settings = config.from_env(env)
    except config.ConfigError as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
    command = {"verify": _verify, "export": _export, "prove": _prove}[args.audit_command]
    try:
        return asyncio.run(command(args, settings))
    except (ValueError, OSError, TimeoutError, aiohttp.ClientError) as exc:
        print(f"qunma: {exc}", file=sys.stderr)
        return 2
