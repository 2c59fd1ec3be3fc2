"""What every benchmark shares: starting the real stack, percentiles, baselines."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg

RESULTS = Path(__file__).parent / "results"


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def summary(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50": percentile(values, 50),
        "p90": percentile(values, 90),
        "p99": percentile(values, 99),
        "max": max(values) if values else float("nan"),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--baseline", type=Path, help="compare with a saved result file")
    p.add_argument("--save", type=Path, help="write the result here (default bench/results/)")
    p.add_argument("--quick", action="store_true", help="a smaller run, for a smoke test")
    return p


def machine() -> dict[str, Any]:
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
    }


def report(name: str, result: dict[str, Any], args: argparse.Namespace) -> Path:
    """Print, save and compare `result`; returns the file it was saved to."""
    result = {
        "bench": name,
        "at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        **result,
    }
    RESULTS.mkdir(exist_ok=True)
    out = args.save or RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print(f"\nsaved to {out}")
    if args.baseline:
        compare(result, json.loads(args.baseline.read_text()))
    return out


def _flatten(data: Any, prefix: str = "") -> dict[str, float]:
    flat: dict[str, float] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            flat.update(_flatten(value, f"{prefix}{key}."))
    elif isinstance(data, int | float) and not isinstance(data, bool):
        flat[prefix.rstrip(".")] = float(data)
    return flat


def compare(current: dict[str, Any], baseline: dict[str, Any]) -> None:
    now, then = _flatten(current.get("figures", {})), _flatten(baseline.get("figures", {}))
    print(f"\ncompared with the baseline of {baseline.get('at')}:")
    for key in sorted(now.keys() & then.keys()):
        before, after = then[key], now[key]
        change = (after - before) / before * 100 if before else float("nan")
        print(f"  {key:45s} {before:12.2f} -> {after:12.2f}  ({change:+.1f}%)")


@asynccontextmanager
async def qunma_up(extra_env: dict[str, str] | None = None) -> AsyncIterator[dict[str, str]]:
    """`qunma up` in a fresh data directory (removed afterwards), exactly as `make run`
    starts it."""
    data = Path(tempfile.mkdtemp(prefix="qunma-bench-"))
    from shared.runtime.children import free_port

    env = {k: v for k, v in os.environ.items() if not k.startswith("QUNMA_")}
    env.update(extra_env or {})
    env["QUNMA_LOG_LEVEL"] = "WARNING"
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qunma",
        "up",
        "--data-dir",
        str(data),
        "--issuer-port",
        str(free_port()),
        "--redeemer-port",
        str(free_port()),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        env=env,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(90):
            while b"Press Ctrl-C" not in (line := await proc.stdout.readline()):
                if not line:
                    raise RuntimeError("qunma up exited before it was ready")
        up: dict[str, str] = json.loads((data / "up.json").read_text())
        up["data_dir"] = str(data)
        yield up
    finally:
        if proc.returncode is None:
            proc.terminate()
            await proc.wait()
        # A bench's database and logs run to hundreds of megabytes; each run starts afresh.
        shutil.rmtree(data, ignore_errors=True)


async def hot_code(
    http: aiohttp.ClientSession, up: dict[str, str], max_scans: int | None = None
) -> dict[str, Any]:
    """A new group and code (with `max_scans`, none by default) for a bench's scans, once the
    redeemer knows the code. The group's member cap is lifted in the redeemer's database so
    that every scan takes the accepted path (a full group would answer early, which is
    cheaper)."""
    async with http.post(
        f"{up['issuer_url']}/v1/groups", json={"name": "bench", "profile": "qq"}
    ) as r:
        group = await r.json()
    async with http.post(
        f"{up['issuer_url']}/v1/groups/{group['group_id']}/codes", json={"max_scans": max_scans}
    ) as r:
        code: dict[str, Any] = await r.json()
    conn = await asyncpg.connect(up["redeemer_database_url"])
    try:
        async with asyncio.timeout(30):
            while not await conn.fetchval(
                "SELECT 1 FROM codes WHERE code_id = $1", uuid.UUID(code["code_id"])
            ):
                await asyncio.sleep(0.05)
        await conn.execute(
            "UPDATE groups SET max_members = 1000000000 WHERE group_id = $1",
            uuid.UUID(group["group_id"]),
        )
    finally:
        await conn.close()
    return code
