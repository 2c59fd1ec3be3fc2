"""Long-lived tasks tied to an application's lifetime, each in its own cleanup context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import suppress
from typing import Any

from aiohttp import web

from shared.store.actor import acting_as

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def background(
    name: str, make: Callable[[web.Application], Coroutine[Any, Any, None]]
) -> CleanupContext:
    """Start `make(app)` as a task after the contexts before it; cancel it on shutdown.
    Events it records name it as their actor: `system:{name}`."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        with acting_as(f"system:{name}"):
            # The task copies the context as it is now: the actor goes with it.
            task = asyncio.create_task(make(app), name=name)
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return context
