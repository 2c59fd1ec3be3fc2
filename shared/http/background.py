"""Long-lived tasks tied to an application's lifetime, each in its own cleanup context."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine
from contextlib import suppress
from typing import Any

from aiohttp import web

CleanupContext = Callable[[web.Application], AsyncIterator[None]]


def background(
    name: str, make: Callable[[web.Application], Coroutine[Any, Any, None]]
) -> CleanupContext:
    """Start `make(app)` as a task after the contexts before it; cancel it on shutdown."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(make(app), name=name)
        try:
            yield
        finally:
            task.cancel()
            with suppress(asyncio.CancelledError):
                await task

    return context
