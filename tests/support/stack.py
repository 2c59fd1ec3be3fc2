"""A started stack for end-to-end tests: the issuer and the redeemer as real processes
(`python -m qunma issuer|redeemer`, exactly what compose runs), on the session's PostgreSQL
and a broker, with fresh databases and topics, and a tenant to call them with."""

from __future__ import annotations

import asyncio
import secrets
import sys
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import asyncpg
from multidict import CIMultiDict

from services.issuer.provision import provision_tenant
from shared import config
from shared.crypto.kek import Kek
from shared.runtime.broker import EmbeddedBroker
from shared.runtime.children import Child, current_env, free_port
from tests.support.infra import Infra, topic_name


@dataclass
class Response:
    status: int
    body: Any
    headers: CIMultiDict[str]
    raw: bytes = b""


@dataclass
class Client:
    session: aiohttp.ClientSession
    base: str
    key: str | None

    async def call(
        self,
        method: str,
        path: str,
        json: Any = None,
        *,
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Response:
        sent = dict(headers or {})
        token = key if key is not None else self.key
        if token:
            sent["Authorization"] = f"Bearer {token}"
        async with self.session.request(method, self.base + path, json=json, headers=sent) as r:
            raw = await r.read()
            body: Any = None
            if r.content_type in ("application/json", "application/problem+json"):
                body = await r.json(content_type=None)
            return Response(r.status, body, CIMultiDict(r.headers), raw)

    async def get(self, path: str, **kw: Any) -> Response:
        return await self.call("GET", path, **kw)

    async def post(self, path: str, json: Any = None, **kw: Any) -> Response:
        return await self.call("POST", path, json, **kw)


@dataclass
class Stack:
    settings: config.Settings
    env: dict[str, str]
    issuer: Client
    redeemer: Client
    api_key: str
    children: dict[str, Child]
    broker: EmbeddedBroker | None = None
    replicas: list[Client] = field(default_factory=list)  # every redeemer, the first included
    tenant_id: str = ""
    redeemer_kek: str = ""  # the redeemer's own KEK: it seals the person keys

    def cli_env(self) -> dict[str, str]:
        """The environment an operator's `qunma audit` / `qunma forget` runs with."""
        return {**self.env, "QUNMA_REDEEMER_KEK": self.redeemer_kek}

    async def restart_broker(self) -> None:
        """Lose the broker (kill -9) and start a fresh, empty one on the same port."""
        assert self.broker is not None
        await self.broker.kill()
        self.broker = EmbeddedBroker(self.broker.port, self.broker.log_path)
        await self.broker.start()

    async def new_tenant(self, name: str = "other") -> tuple[Client, Client, str]:
        """Another tenant's clients for both services (once the redeemer knows its key)."""
        created = await provision_tenant(self.settings, name)
        issuer = Client(self.issuer.session, self.issuer.base, created.api_key)
        redeemer = Client(self.redeemer.session, self.redeemer.base, created.api_key)
        await _knows_key(redeemer)
        return issuer, redeemer, created.api_key

    async def create_group(self, name: str = "Book club", **fields: Any) -> dict[str, Any]:
        response = await self.issuer.post("/v1/groups", {"name": name, **fields})
        assert response.status == 201, response.body
        return dict(response.body)

    async def issue_code(self, group_id: str, **fields: Any) -> dict[str, Any]:
        response = await self.issuer.post(f"/v1/groups/{group_id}/codes", fields)
        assert response.status == 201, response.body
        return dict(response.body)

    async def scan(self, payload: str, user_id: str, **fields: Any) -> Response:
        return await self.redeemer.post(
            "/v1/scans", {"payload": payload, "user_id": user_id, **fields}
        )

    async def join(self, token: str, user_id: str) -> Response:
        return await self.redeemer.post("/v1/joins", {"join_token": token, "user_id": user_id})

    async def quiet(self, timeout: float = 30) -> None:
        """Until both logs are published and every partition ends with a checkpoint: no
        checkpoint is still due, so the logs stay as they are until something happens."""
        async with asyncio.timeout(timeout):
            for client in (self.issuer, self.redeemer):
                while True:
                    heads = await client.get("/v1/log/heads", key=self.settings.log_token)
                    if all(
                        p["published_position"] == p["sealed_position"]
                        and (p["checkpoint"] or {"position": 0})["position"] == p["sealed_position"]
                        for p in heads.body["partitions"]
                    ):
                        break
                    await asyncio.sleep(0.1)

    async def settled(self, timeout: float = 30) -> None:
        """Quiet, and each service has applied all of the other's log: whatever either
        would do in reaction to an event (the issuer opening a live code's next group, say)
        is done."""
        await self.quiet(timeout)
        async with asyncio.timeout(timeout):
            for producer, consumer, log in (
                ("QUNMA_ISSUER_DATABASE_URL", "QUNMA_REDEEMER_DATABASE_URL", "issuer_topic"),
                ("QUNMA_REDEEMER_DATABASE_URL", "QUNMA_ISSUER_DATABASE_URL", "redeemer_topic"),
            ):
                while True:
                    sealed = await _fetch_map(
                        self.env[producer],
                        "SELECT partition, sealed_position FROM log_partitions",
                    )
                    applied = await _fetch_map(
                        self.env[consumer],
                        "SELECT partition, position FROM tracking WHERE log = $1",
                        getattr(self.settings, log),
                    )
                    if all(applied.get(p, 0) >= n for p, n in sealed.items()):
                        break
                    await asyncio.sleep(0.05)
        await self.quiet(timeout)  # what the reactions recorded is sealed too


async def _fetch_map(dsn: str, sql: str, *args: Any) -> dict[int, int]:
    conn = await asyncpg.connect(dsn)
    try:
        return {r[0]: r[1] for r in await conn.fetch(sql, *args)}
    finally:
        await conn.close()


async def _ready(client: Client, child: Child, timeout: float = 60) -> None:
    async with asyncio.timeout(timeout):
        while True:
            if not child.running:
                raise RuntimeError(f"{child.name} exited:\n{child.tail(60)}")
            with suppress(aiohttp.ClientError):
                if (await client.get("/readyz")).status == 200:
                    return
            await asyncio.sleep(0.1)


async def _knows_key(client: Client, timeout: float = 30) -> None:
    async with asyncio.timeout(timeout):
        while (
            await client.get("/v1/groups/00000000-0000-0000-0000-000000000000/members")
        ).status == 401:
            await asyncio.sleep(0.05)


@asynccontextmanager
async def started_stack(
    infra: Infra,
    *,
    own_broker: bool = False,
    extra_env: dict[str, str] | None = None,
    redeemers: int = 1,
) -> AsyncIterator[Stack]:
    async with AsyncExitStack() as exits:
        issuer_db = await exits.enter_async_context(infra.database())
        redeemer_db = await exits.enter_async_context(infra.database())
        broker: EmbeddedBroker | None = None
        bootstrap = infra.broker.bootstrap
        if own_broker:
            broker = EmbeddedBroker(free_port(), infra.root / f"broker-{secrets.token_hex(3)}.log")
            await broker.start()
            bootstrap = broker.bootstrap
        issuer_port, redeemer_port = free_port(), free_port()
        env = current_env(
            QUNMA_ISSUER_DATABASE_URL=issuer_db,
            QUNMA_REDEEMER_DATABASE_URL=redeemer_db,
            QUNMA_KAFKA_BOOTSTRAP=bootstrap,
            QUNMA_ISSUER_PORT=str(issuer_port),
            QUNMA_REDEEMER_PORT=str(redeemer_port),
            QUNMA_ISSUER_TOPIC=topic_name("e2e.issuer"),
            QUNMA_REDEEMER_TOPIC=topic_name("e2e.redeemer"),
            QUNMA_KEK=Kek.generate_text(),
            QUNMA_LOG_TOKEN="qlt_" + secrets.token_urlsafe(24),
            **(extra_env or {}),
        )
        settings = config.from_env(env)
        children: dict[str, Child] = {}
        tag = secrets.token_hex(3)
        replica_ports = [redeemer_port] + [free_port() for _ in range(redeemers - 1)]
        launches = [("issuer", "issuer", issuer_port)] + [
            (f"redeemer{'' if i == 0 else i + 1}", "redeemer", port)
            for i, port in enumerate(replica_ports)
        ]
        # Each service seals its private keys under its own KEK, as in production.
        redeemer_env = {**env, "QUNMA_KEK": Kek.generate_text()}
        for name, service, port in launches:
            child = Child(
                name,
                [sys.executable, "-m", "qunma", service, "--port", str(port)],
                log_path=infra.root / f"{name}-{tag}.log",
                env=env if service == "issuer" else redeemer_env,
            )
            await child.start()
            children[name] = child
            exits.push_async_callback(child.stop)
        session = await exits.enter_async_context(aiohttp.ClientSession())
        issuer = Client(session, settings.issuer_url, None)
        redeemer = Client(session, settings.redeemer_url, None)
        stack = Stack(settings, env, issuer, redeemer, "", children, broker)
        stack.redeemer_kek = redeemer_env["QUNMA_KEK"]

        async def stop_broker() -> None:
            if stack.broker is not None:
                await stack.broker.stop()

        exits.push_async_callback(stop_broker)
        await _ready(issuer, children["issuer"])
        created = await provision_tenant(settings, f"tenant-{tag}")
        stack.api_key = issuer.key = redeemer.key = created.api_key
        stack.tenant_id = str(created.tenant_id)
        for i, port in enumerate(replica_ports):
            replica = (
                redeemer if i == 0 else Client(session, f"http://127.0.0.1:{port}", created.api_key)
            )
            await _ready(replica, children["redeemer" if i == 0 else f"redeemer{i + 1}"])
            await _knows_key(replica)
            stack.replicas.append(replica)
        yield stack


@asynccontextmanager
async def in_process_redeemer(stack: Stack, clock: Any) -> AsyncIterator[Client]:
    """One more redeemer replica, in this process with an injected clock, on a real loopback
    HTTP server, sharing the stack's database and logs."""
    from aiohttp import web

    from services.redeemer.app import create_app

    port = free_port()
    app = create_app(stack.settings.with_(redeemer_port=port), clock=clock)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        client = Client(stack.redeemer.session, f"http://127.0.0.1:{port}", stack.api_key)
        async with asyncio.timeout(30):
            while (await client.get("/readyz")).status != 200:
                await asyncio.sleep(0.05)
        yield client
    finally:
        await runner.cleanup()
