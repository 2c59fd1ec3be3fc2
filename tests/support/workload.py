"""A recorded workload for the fault suite: what a platform would send, retried as a careful
client retries, with every answer kept so that afterwards one can check that nothing
acknowledged was lost or doubled.

Open loop at about `rate` operations a second: scans by new people (each followed by the
join), new codes, revocations. Every POST carries an Idempotency-Key and is retried with
the same key, on another replica where there is one, after a connection error, a 503 or a
409 `idempotency_in_progress`, until it is answered; any 500 is recorded as a failure.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from tests.support.stack import Client, Response, Stack

RETRIED = {503}
RETRIED_CODES = {"idempotency_in_progress", "code_not_propagated"}


@dataclass
class Record:
    statuses: Counter[int] = field(default_factory=Counter)
    server_errors: list[str] = field(default_factory=list)
    issued: dict[str, str] = field(default_factory=dict)  # Idempotency-Key -> code_id
    joins: dict[str, str] = field(default_factory=dict)  # user_id -> group_id
    revoked: set[str] = field(default_factory=set)
    tokens: int = 0
    retries: int = 0
    replayed: int = 0  # answers that came from an earlier attempt (Idempotent-Replayed)


class Workload:
    def __init__(
        self,
        stack: Stack,
        groups: list[dict[str, Any]],
        codes: list[dict[str, Any]],
        *,
        rate: float = 60.0,
        deadline: float = 90.0,
    ) -> None:
        self.stack = stack
        self.groups = groups
        self.codes = list(codes)
        self.rate = rate
        self.deadline = deadline  # how long one operation may be retried
        self.record = Record()
        self._stop = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._random = random.Random(7)

    async def _call(
        self, clients: list[Client], path: str, body: dict[str, Any], key: str
    ) -> Response | None:
        """POST until answered; None if it never was within the deadline."""
        loop = asyncio.get_running_loop()
        give_up = loop.time() + self.deadline
        attempt = 0
        while loop.time() < give_up:
            client = clients[attempt % len(clients)]
            attempt += 1
            try:
                answer = await client.post(path, body, headers={"Idempotency-Key": key})
            except (aiohttp.ClientError, OSError, TimeoutError):
                self.record.retries += 1
                await asyncio.sleep(0.2)
                continue
            self.record.statuses[answer.status] += 1
            if "Idempotent-Replayed" in answer.headers:
                self.record.replayed += 1
            if answer.status >= 500 and answer.status != 503:
                self.record.server_errors.append(f"{answer.status} {path}: {answer.body}")
            code = answer.body.get("code") if isinstance(answer.body, dict) else None
            if answer.status in RETRIED or answer.status >= 500 or code in RETRIED_CODES:
                self.record.retries += 1
                await asyncio.sleep(0.2)
                continue
            return answer
        return None

    async def _scan_and_join(self) -> None:
        live = [c for c in self.codes if c["code_id"] not in self.record.revoked]
        if not live:
            return
        code = self._random.choice(live)
        user = f"w-{uuid.uuid4().hex[:12]}"
        replicas = self.stack.replicas or [self.stack.redeemer]
        scanned = await self._call(
            replicas, "/v1/scans", {"payload": code["payload"], "user_id": user}, f"s-{user}"
        )
        if scanned is None or scanned.status != 200 or "join_token" not in scanned.body:
            return
        self.record.tokens += 1
        joined = await self._call(
            replicas,
            "/v1/joins",
            {"join_token": scanned.body["join_token"], "user_id": user},
            f"j-{user}",
        )
        if joined is not None and joined.status in (200, 201):
            self.record.joins[user] = joined.body["group_id"]

    async def _issue(self) -> None:
        group = self._random.choice(self.groups)
        key = f"i-{uuid.uuid4().hex[:12]}"
        answer = await self._call(
            [self.stack.issuer], f"/v1/groups/{group['group_id']}/codes", {"max_scans": 40}, key
        )
        if answer is not None and answer.status == 201:
            self.record.issued[key] = answer.body["code_id"]
            self.codes.append(answer.body)

    async def _revoke(self) -> None:
        live = [c for c in self.codes if c["code_id"] not in self.record.revoked]
        if len(live) < 3:
            return
        code = self._random.choice(live)
        answer = await self._call(
            [self.stack.issuer],
            f"/v1/codes/{code['code_id']}/revoke",
            {"reason": "fault suite"},
            f"r-{code['code_id']}",
        )
        if answer is not None and answer.status < 300:
            self.record.revoked.add(code["code_id"])

    async def _one(self) -> None:
        roll = self._random.random()
        if roll < 0.8:
            await self._scan_and_join()
        elif roll < 0.95:
            await self._issue()
        else:
            await self._revoke()

    async def run(self) -> None:
        """Start operations at `rate` a second until `stop`; then wait for those started."""
        while not self._stop.is_set():
            task = asyncio.create_task(self._one())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            await asyncio.sleep(1 / self.rate)
        if self._tasks:
            await asyncio.gather(*self._tasks)

    def stop(self) -> None:
        self._stop.set()
