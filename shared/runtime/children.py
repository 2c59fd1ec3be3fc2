"""Child processes that never outlive `qunma up`.

Each child runs in its own session (a Ctrl-C at the terminal reaches only `qunma up`, which
then stops the children in order) and asks the kernel for a signal if its parent dies
(PR_SET_PDEATHSIG), so even a `kill -9` of `qunma up` leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import os
import signal
from collections.abc import Mapping, Sequence
from contextlib import suppress
from pathlib import Path
from typing import IO

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def _die_with_parent(sig: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, sig, 0, 0, 0)


class Child:
    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        *,
        log_path: Path,
        env: Mapping[str, str] | None = None,
        user: str | None = None,
        stop_signal: int = signal.SIGTERM,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.env = dict(env) if env is not None else None
        self.user = user
        self.stop_signal = stop_signal
        self.process: asyncio.subprocess.Process | None = None
        self._log: IO[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.returncode is None

    async def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        # Opened once at start and closed in stop(); a blocking open here is negligible.
        self._log = open(self.log_path, "ab")  # noqa: SIM115, ASYNC230
        stop_signal = self.stop_signal
        self.process = await asyncio.create_subprocess_exec(
            *self.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=self._log,
            stderr=asyncio.subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
            user=self.user,
            preexec_fn=lambda: _die_with_parent(stop_signal),
        )
        log.debug("started %s (pid %d)", self.name, self.process.pid)

    async def wait(self) -> int:
        assert self.process is not None
        return await self.process.wait()

    async def stop(self, timeout: float = 15.0) -> None:
        process = self.process
        if process is not None and process.returncode is None:
            try:
                process.send_signal(self.stop_signal)
                await asyncio.wait_for(process.wait(), timeout)
            except ProcessLookupError:
                pass
            except TimeoutError:
                log.warning("%s did not stop within %.0f s; killing it", self.name, timeout)
                process.kill()
                await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    async def kill(self) -> None:
        """SIGKILL, as a crash would stop it: nothing is flushed, nothing cleaned up."""
        process = self.process
        if process is not None and process.returncode is None:
            with suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        if self._log is not None:
            self._log.close()
            self._log = None

    def tail(self, lines: int = 30) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])


def free_port(host: str = "127.0.0.1") -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


async def wait_for_port(host: str, port: int, child: Child, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        if not child.running:
            raise RuntimeError(f"{child.name} exited during start:\n{child.tail()}")
        try:
            _, writer = await asyncio.open_connection(host, port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"{child.name} did not listen on {host}:{port}") from None
            await asyncio.sleep(0.05)


def current_env(**overrides: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(overrides)
    return env
