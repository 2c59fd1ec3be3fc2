"""`qunma audit verify`: replay both logs (the topics, or an export) and check every hash
and signature, against the producers' heads."""

from __future__ import annotations

import argparse
import sys
from typing import Any

import aiohttp

from qunma.audit.pins import fetch_pins
from qunma.audit.terminal import JSON, Progress
from shared import config


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


async def command(args: argparse.Namespace, settings: config.Settings) -> int:
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
    progress = Progress(sys.stderr.isatty() and not args.json, "verifying")
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
