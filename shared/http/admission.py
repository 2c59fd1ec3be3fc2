"""Admission control: at most `limit` requests of the hot paths decided at once.

A scan acquires a database connection two or three times. Let a thousand start together
and each one's second acquire waits behind every newer request's first: work in progress
grows, every request takes longer, throughput falls as load rises. Admitting a bounded
number (about the pool's size) and queueing the rest keeps throughput flat under overload;
the queue costs nothing but the wait.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware


def admission_middleware(limit: int, prefixes: Sequence[str]) -> Middleware:
    gate = asyncio.Semaphore(limit)
    hot = tuple(prefixes)

    @web.middleware
    async def admit(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.method != "POST" or not request.path.startswith(hot):
            return await handler(request)
        async with gate:
            return await handler(request)

    return admit
