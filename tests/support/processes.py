"""Starting helper processes of the test suite."""

from __future__ import annotations

import asyncio
import sys


async def python_module(module: str, *args: str, stdin: bool = False) -> asyncio.subprocess.Process:
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        module,
        *args,
        stdin=asyncio.subprocess.PIPE if stdin else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def finish(process: asyncio.subprocess.Process, timeout: float = 60) -> tuple[int, str]:
    out, err = await asyncio.wait_for(process.communicate(), timeout)
    text = out.decode() + err.decode()
    assert process.returncode is not None
    return process.returncode, text
