"""What a follower applies events to (shared/store/follower.py): a projection, inside the
follower's transaction that also moves its tracking row, so each event is applied once.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

from shared.dbtypes import Conn
from shared.events import Envelope, Event


class Projection(Protocol):
    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        """Change the projection for one event, inside the follower's transaction."""


@runtime_checkable
class BatchedProjection(Projection, Protocol):
    """A projection that gathers its changes over a batch and writes them once: `begin` at
    the start of each batch's transaction, `flush` before it commits (a rolled-back batch
    begins again, so nothing gathered is applied twice)."""

    def begin(self) -> None: ...

    async def flush(self, conn: Conn) -> None: ...


class Fanout:
    """Several projections (or reactions) of one log, applied in order, event by event,
    in the same transaction: what one service learns and what it does on hearing it stay
    separate modules, and both happen exactly once."""

    def __init__(self, parts: Sequence[Projection]) -> None:
        self.parts = list(parts)

    def begin(self) -> None:
        for part in self.parts:
            if isinstance(part, BatchedProjection):
                part.begin()

    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        for part in self.parts:
            await part.apply(conn, envelope, event)

    async def flush(self, conn: Conn) -> None:
        for part in self.parts:
            if isinstance(part, BatchedProjection):
                await part.flush(conn)
