"""`qunma up` as a user runs it: ready, the README walkthrough verbatim, nothing left behind."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
from pathlib import Path

import aiohttp
import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _walkthrough() -> str:
    readme = (ROOT / "README.md").read_text()
    block = readme.split("<!-- walkthrough:start -->", 1)[1].split("<!-- walkthrough:end -->", 1)[0]
    match = re.search(r"```bash\n(.*?)```", block, re.S)
    assert match, "the README walkthrough is a ```bash block between the markers"
    return match.group(1)


def _port_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


async def _start(cwd: Path) -> tuple[asyncio.subprocess.Process, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUNMA_")}
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "qunma",
        "up",
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    assert proc.stdout is not None
    seen = []
    async with asyncio.timeout(90):
        while True:
            line = (await proc.stdout.readline()).decode()
            seen.append(line)
            if not line or "Press Ctrl-C" in line:
                break
    output = "".join(seen)
    assert "Press Ctrl-C" in output, output
    return proc, output


async def _stop(proc: asyncio.subprocess.Process, sig: int) -> None:
    proc.send_signal(sig)
    async with asyncio.timeout(60):
        assert await proc.wait() == 0


async def test_qunma_up_runs_the_readme_walkthrough_and_leaves_nothing_behind(
    tmp_path: Path,
) -> None:
    if not (_port_free(8081) and _port_free(8082)):
        pytest.fail("ports 8081 and 8082 must be free: the README walkthrough uses them")
    proc, output = await _start(tmp_path)
    try:
        up = json.loads((tmp_path / ".qunma" / "up.json").read_text())
        assert {"issuer_url", "redeemer_url", "api_key", "kafka_bootstrap"} <= set(up)
        assert up["issuer_url"] == "http://127.0.0.1:8081"
        assert up["redeemer_url"] == "http://127.0.0.1:8082"
        assert up["api_key"] in output
        children = psutil.Process(proc.pid).children(recursive=True)
        commands = " ".join(" ".join(c.cmdline()) for c in children)
        for part in ("postgres", "tansu", "qunma issuer", "qunma redeemer"):
            assert part in commands, part

        # The walkthrough's `.venv/bin/qunma` is the repository's, run from its root.
        (tmp_path / ".venv").symlink_to(Path(sys.prefix))
        walk = await asyncio.create_subprocess_exec(
            "bash",
            "-euo",
            "pipefail",
            "-c",
            _walkthrough(),
            cwd=tmp_path,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        out, _ = await asyncio.wait_for(walk.communicate(), 60)
        text = out.decode()
        assert walk.returncode == 0, text
        assert '"code":"code_revoked"' in text, text
        assert '"user_id":"alice"' in text
        assert "log verified" in text, text
        assert (tmp_path / "code.png").stat().st_size > 0

        # `qunma tenant create`, as the README says, from another shell beside the stack:
        # it takes the stack's settings from .qunma/ (nothing exported).
        clean = {k: v for k, v in os.environ.items() if not k.startswith("QUNMA_")}
        tenant = await asyncio.create_subprocess_exec(
            str(tmp_path / ".venv" / "bin" / "qunma"),
            "tenant",
            "create",
            "--name",
            "Acme",
            cwd=tmp_path,
            env=clean,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        made, err = await asyncio.wait_for(tenant.communicate(), 60)
        assert tenant.returncode == 0, err.decode()
        acme = json.loads(made)
        async with (
            aiohttp.ClientSession() as session,
            session.get(
                f"{up['issuer_url']}/v1/groups",
                headers={"Authorization": f"Bearer {acme['api_key']}"},
            ) as resp,
        ):
            assert resp.status == 200
    finally:
        if proc.returncode is None:
            await _stop(proc, signal.SIGTERM)
    async with asyncio.timeout(10):  # the children are gone, not just signalled
        while alive := [
            c for c in children if c.is_running() and c.status() != psutil.STATUS_ZOMBIE
        ]:
            await asyncio.sleep(0.05)
    assert alive == [], f"left behind: {[c.cmdline() for c in alive]}"

    # A second start keeps the data, the signing keys and the demo key.
    again, _ = await _start(tmp_path)
    try:
        assert json.loads((tmp_path / ".qunma" / "up.json").read_text())["api_key"] == up["api_key"]
    finally:
        await _stop(again, signal.SIGINT)
