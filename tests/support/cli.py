"""Running the `qunma` command as an operator or auditor would: a real process."""

from __future__ import annotations

import asyncio
import json
import sys
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Ran:
    code: int
    out: str
    err: str

    def json(self) -> Any:
        return json.loads(self.out)


async def qunma(env: dict[str, str], *args: str, timeout: float = 120) -> Ran:
    """`python -m qunma ARGS` with `env` (and no `qunma up` data directory to read)."""
    if args and args[0] in ("audit", "forget"):
        # Settings come from `env` only, never from a developer's .qunma/ in the checkout.
        if args[0] == "audit":
            args = ("audit", "--data-dir", "/nonexistent", *args[1:])
        else:
            args = (*args, "--data-dir", "/nonexistent")
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qunma",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), timeout)
    assert proc.returncode is not None
    return Ran(proc.returncode, out.decode(), err.decode())
