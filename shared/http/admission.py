"""Admission control: at most `limit` requests of the hot paths decided at once, shared
fairly between tenants.

A scan acquires a database connection two or three times. Let a thousand start together
and each one's second acquire waits behind every newer request's first: work in progress
grows, every request takes longer, throughput falls as load rises. Admitting a bounded
number (about the pool's size) and queueing the rest keeps throughput flat under overload.

The slots are shared between tenants (the anonymous landing page is one more class): a
class holds at most `share` of them while others wait, and a slot set free goes to the
classes waiting in turn, so a tenant whose requests are slow (or made slow on purpose) can
only queue behind itself.
"""

from __future__ import annotations

import asyncio
from collections import Counter, OrderedDict, deque
from collections.abc import Sequence
from dataclasses import dataclass

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from shared.http.auth import PRINCIPAL

LANDING = "landing"  # the class of every anonymous request


@dataclass(frozen=True)
class GateStats:
    in_use: int
    waiting: int
    classes_waiting: int


class FairGate:
    def __init__(self, limit: int, share: float = 0.75) -> None:
        self.limit = limit
        self.cap = max(1, int(limit * share))
        self._in_use = 0
        self._held: Counter[str] = Counter()
        self._waiting: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @property
    def stats(self) -> GateStats:
        waiting = sum(len(q) for q in self._waiting.values())
        return GateStats(self._in_use, waiting, len(self._waiting))

    def held(self, cls: str) -> int:
        return self._held[cls]

    async def acquire(self, cls: str) -> None:
        if cls not in self._waiting and self._free_for(cls):
            self._grant(cls)
            return
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.setdefault(cls, deque()).append(future)
        try:
            await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                self.release(cls)  # granted as it was cancelled: pass the slot on
            else:
                self._forget(cls, future)
            raise

    def release(self, cls: str) -> None:
        self._in_use -= 1
        self._held[cls] -= 1
        if not self._held[cls]:
            del self._held[cls]
        self._dispatch()

    def _free_for(self, cls: str) -> bool:
        return self._in_use < self.limit and self._held[cls] < self.cap

    def _grant(self, cls: str) -> None:
        self._in_use += 1
        self._held[cls] += 1

    def _dispatch(self) -> None:
        """Hand free slots to waiting classes in turn (each round, one per class)."""
        while self._in_use < self.limit and self._waiting:
            for cls in list(self._waiting):
                if self._free_for(cls):
                    queue = self._waiting[cls]
                    future = queue.popleft()
                    if not queue:
                        del self._waiting[cls]
                    else:
                        self._waiting.move_to_end(cls)  # its turn is over
                    self._grant(cls)
                    future.set_result(None)
                    break
            else:
                return  # every waiting class is at its share

    def _forget(self, cls: str, future: asyncio.Future[None]) -> None:
        queue = self._waiting.get(cls)
        if queue is None:
            return
        try:
            queue.remove(future)
        except ValueError:
            return
        if not queue:
            del self._waiting[cls]


def admission_middleware(gate: FairGate, prefixes: Sequence[str]) -> Middleware:
    """Gate the hot paths; runs after authentication, which names the tenant."""
    hot = tuple(prefixes)

    @web.middleware
    async def admit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if not request.path.startswith(hot):
            return await handler(request)
        if request.method != "POST" and not request.path.startswith("/j/"):
            return await handler(request)
        who = request.get(PRINCIPAL)
        cls = str(who.tenant_id) if who is not None and who.tenant_id else LANDING
        await gate.acquire(cls)
        try:
            return await handler(request)
        finally:
            gate.release(cls)

    return admit
