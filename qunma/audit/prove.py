"""`qunma audit prove`: fetch an event's inclusion proof from whichever service logged it,
and check it against a signed checkpoint."""

from __future__ import annotations

import argparse
import json
import sys

import aiohttp
import msgspec

from qunma.audit.pins import fetch_pins
from shared import config


async def command(args: argparse.Namespace, settings: config.Settings) -> int:
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
