"""`qunma up`: PostgreSQL, the broker, the issuer and the redeemer, started and stopped together.

Any of the first two is external when its environment variable is set
(`QUNMA_ISSUER_DATABASE_URL` / `QUNMA_REDEEMER_DATABASE_URL`, `QUNMA_KAFKA_BOOTSTRAP`).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from shared import config
from shared.crypto.api_keys import hash_key
from shared.crypto.kek import Kek
from shared.db import mask_dsn
from shared.kafka import ensure_topics, wait_for_broker
from shared.runtime.broker import EmbeddedBroker
from shared.runtime.children import Child, current_env, free_port
from shared.runtime.postgres import EmbeddedPostgres

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class UpOptions:
    data_dir: Path
    issuer_port: int = 8081
    redeemer_port: int = 8082
    pg_port: int = 0  # 0: a free port, chosen at each start
    kafka_port: int = 0
    demo_tenant: str = "demo"


def _secrets(path: Path) -> dict[str, str]:
    """The two KEKs and the log token, made once and kept: each service's KEK seals its
    private keys (the issuer's code and log keys, the redeemer's log key)."""
    found: dict[str, str] = json.loads(path.read_text()) if path.exists() else {}
    wanted: dict[str, Callable[[], str]] = {
        "kek": Kek.generate_text,
        "redeemer_kek": Kek.generate_text,
        "log_token": lambda: "qlt_" + secrets.token_urlsafe(32),
    }
    missing = {name: make() for name, make in wanted.items() if name not in found}
    if missing:  # a first start, or a data directory from before a secret existed
        found.update(missing)
        path.touch(mode=0o600)
        path.write_text(json.dumps(found, indent=2))
    return found


async def _wait_ready(url: str, child: Child, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while True:
            if not child.running:
                raise RuntimeError(f"{child.name} exited during start:\n{child.tail()}")
            with suppress(aiohttp.ClientError, TimeoutError):
                async with session.get(
                    f"{url}/readyz", timeout=aiohttp.ClientTimeout(total=2)
                ) as resp:
                    if resp.status == 200:
                        return
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"{child.name} was not ready within {timeout:.0f} s:\n{child.tail()}"
                )
            await asyncio.sleep(0.1)


async def _wait_key_known(redeemer_url: str, api_key: str, timeout: float) -> None:
    """The redeemer learns API keys from the issuer's log: wait until it accepts this one."""
    deadline = time.monotonic() + timeout
    probe = f"{redeemer_url}/v1/groups/00000000-0000-0000-0000-000000000000/members"
    async with aiohttp.ClientSession() as session:
        while True:
            async with session.get(probe, headers={"Authorization": f"Bearer {api_key}"}) as resp:
                if resp.status != 401:
                    return
            if time.monotonic() > deadline:
                raise TimeoutError("the redeemer did not learn the demo API key")
            await asyncio.sleep(0.1)


class Stack:
    def __init__(self, options: UpOptions) -> None:
        self.options = options
        self.data = options.data_dir.resolve()
        self.logs = self.data / "logs"
        self.postgres: EmbeddedPostgres | None = None
        self.broker: EmbeddedBroker | None = None
        self.services: list[Child] = []

    async def start(self) -> dict[str, str]:
        started = time.monotonic()
        self.data.mkdir(parents=True, exist_ok=True)
        keys = _secrets(self.data / "secrets.json")
        env = os.environ
        issuer_db = env.get("QUNMA_ISSUER_DATABASE_URL")
        redeemer_db = env.get("QUNMA_REDEEMER_DATABASE_URL")
        bootstrap = env.get("QUNMA_KAFKA_BOOTSTRAP")
        starting = []
        if not (issuer_db and redeemer_db):
            self.postgres = EmbeddedPostgres(
                self.data / "pg", self.options.pg_port or free_port(), self.logs / "postgres.log"
            )
            starting.append(self.postgres.start())
        if not bootstrap:
            self.broker = EmbeddedBroker(
                self.options.kafka_port or free_port(), self.logs / "broker.log"
            )
            starting.append(self.broker.start())
        await asyncio.gather(*starting)
        if self.postgres is not None:
            for name in ("issuer", "redeemer"):
                await self.postgres.ensure_database(name)
            issuer_db = issuer_db or self.postgres.dsn("issuer")
            redeemer_db = redeemer_db or self.postgres.dsn("redeemer")
        if self.broker is not None:
            bootstrap = self.broker.bootstrap
        assert issuer_db
        assert redeemer_db
        assert bootstrap

        child_env = current_env(
            QUNMA_ISSUER_DATABASE_URL=issuer_db,
            QUNMA_REDEEMER_DATABASE_URL=redeemer_db,
            QUNMA_KAFKA_BOOTSTRAP=bootstrap,
            QUNMA_ISSUER_PORT=str(self.options.issuer_port),
            QUNMA_REDEEMER_PORT=str(self.options.redeemer_port),
            QUNMA_KEK=env.get("QUNMA_KEK") or keys["kek"],
            QUNMA_LOG_TOKEN=env.get("QUNMA_LOG_TOKEN") or keys["log_token"],
        )
        settings = config.from_env(child_env)
        await wait_for_broker(settings.kafka)
        await ensure_topics(
            settings.kafka,
            {
                settings.issuer_topic: settings.partitions,
                settings.redeemer_topic: settings.partitions,
            },
        )

        issuer = Child(
            "issuer",
            [sys.executable, "-m", "qunma", "issuer"],
            log_path=self.logs / "issuer.log",
            env=child_env,
        )
        redeemer = Child(
            "redeemer",
            [sys.executable, "-m", "qunma", "redeemer"],
            log_path=self.logs / "redeemer.log",
            env={
                **child_env,
                "QUNMA_KEK": env.get("QUNMA_REDEEMER_KEK") or keys["redeemer_kek"],
            },
        )
        self.services = [issuer, redeemer]
        await asyncio.gather(issuer.start(), redeemer.start())
        await _wait_ready(settings.issuer_url, issuer, 30)
        api_key = await self._demo_key(settings)
        await _wait_ready(settings.redeemer_url, redeemer, 30)
        await _wait_key_known(settings.redeemer_url, api_key, 30)
        summary = {
            "issuer_url": settings.issuer_url,
            "redeemer_url": settings.redeemer_url,
            "public_url": settings.public_url,
            "api_key": api_key,
            "kafka_bootstrap": bootstrap,
            "issuer_database_url": mask_dsn(issuer_db),
            "redeemer_database_url": mask_dsn(redeemer_db),
            "logs": str(self.logs),
            "ready_seconds": f"{time.monotonic() - started:.1f}",
        }
        # What `qunma audit` and `qunma forget` need to reach this stack from another shell
        # (the secrets stay in secrets.json).
        reach = {
            name: value
            for name, value in child_env.items()
            if name.startswith("QUNMA_") and name not in ("QUNMA_KEK", "QUNMA_LOG_TOKEN")
        }
        up_json = self.data / "up.json"
        up_json.touch(mode=0o600)
        up_json.write_text(json.dumps({**summary, "env": reach}, indent=2) + "\n")
        return summary

    async def _demo_key(self, settings: config.Settings) -> str:
        from services.issuer.provision import key_is_valid, provision_tenant

        up_json = self.data / "up.json"
        if up_json.exists():
            previous = json.loads(up_json.read_text()).get("api_key")
            if previous and await key_is_valid(settings, hash_key(previous)):
                return str(previous)
        created = await provision_tenant(settings, self.options.demo_tenant)
        return created.api_key

    async def stop(self) -> None:
        for child in reversed(self.services):
            await child.stop()
        if self.broker is not None:
            await self.broker.stop()
        if self.postgres is not None:
            await self.postgres.stop()

    async def wait(self) -> str:
        """Until SIGINT/SIGTERM, or until a child dies; says which."""
        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        reason = "stopped"

        def on_signal(name: str) -> None:
            nonlocal reason
            reason = name
            stop.set()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, on_signal, sig.name)
        children = [
            c
            for c in [
                *self.services,
                self.broker.child if self.broker else None,
                self.postgres.child if self.postgres else None,
            ]
            if c
        ]
        watchers = [asyncio.create_task(c.wait()) for c in children]
        stopper = asyncio.create_task(stop.wait())
        done, _ = await asyncio.wait([stopper, *watchers], return_when=asyncio.FIRST_COMPLETED)
        for task in [stopper, *watchers]:
            task.cancel()
        if stopper not in done:
            dead = [c for c in children if not c.running]
            reason = ", ".join(
                f"{c.name} exited ({c.process.returncode if c.process else '?'})" for c in dead
            )
        return reason


async def run_up(options: UpOptions) -> int:
    stack = Stack(options)
    loop = asyncio.get_running_loop()
    try:
        # A signal during start stops everything too.
        start = asyncio.create_task(stack.start())
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, start.cancel)
        try:
            summary = await start
        except asyncio.CancelledError:
            print("qunma: interrupted during start; stopping", flush=True)
            return 130
        except Exception as exc:
            print(f"qunma: start failed: {exc}", file=sys.stderr, flush=True)
            return 1
        print(_banner(summary), flush=True)
        reason = await stack.wait()
        print(f"qunma: {reason}; stopping", flush=True)
        return 0 if reason in ("SIGINT", "SIGTERM") else 1
    finally:
        with suppress(Exception):
            await asyncio.shield(stack.stop())


def _banner(s: dict[str, str]) -> str:
    return (
        f"\nqunma is up (ready in {s['ready_seconds']} s)\n\n"
        f"  issuer     {s['issuer_url']}\n"
        f"  redeemer   {s['redeemer_url']}\n"
        f"  api key    {s['api_key']}\n"
        f"  kafka      {s['kafka_bootstrap']}\n"
        f"  logs       {s['logs']}\n\n"
        f"  try:  curl -s -X POST {s['issuer_url']}/v1/groups \\\n"
        f"          -H 'Authorization: Bearer {s['api_key']}' \\\n"
        f"          -H 'Content-Type: application/json' -d '{{\"name\": \"Book club\"}}'\n\n"
        "Press Ctrl-C to stop.\n"
    )
