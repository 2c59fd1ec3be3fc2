"""Dispatches a command to its one handler, with the dependencies wired at bootstrap."""

from __future__ import annotations

from typing import Any

from services.issuer.handlers import HANDLERS, Deps


class Bus:
    def __init__(self, deps: Deps) -> None:
        self.deps = deps

    async def handle(self, command: Any) -> Any:
        return await HANDLERS[type(command)](command, self.deps)
