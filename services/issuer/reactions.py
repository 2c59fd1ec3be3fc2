"""What the issuer does on hearing the redeemer, beyond counting: when a scan found every
group of a live code full (`ScanRejected`, reason group_full, with how many groups it saw),
auto_create opens the next group (handlers/live_codes.py `open_next_group`).

A reaction turns an event of the other service into a command of this one. It runs in the
follower's transaction that applies the event, so the reaction happens exactly once
however often the event is delivered; a rejection that saw fewer groups than the live code
has now (another rejection opened one already) opens none.
"""

from __future__ import annotations

from collections.abc import Callable

from services.issuer.handlers.live_codes import open_next_group
from shared.clock import Clock
from shared.dbtypes import Conn
from shared.events import Envelope, Event
from shared.events.redeemer import ScanRejected
from shared.refusals import Reason
from shared.store.eventstore import LogSpec
from shared.store.unit_of_work import Projector, UnitOfWork


class AutoCreateGroups:
    def __init__(
        self, log: LogSpec, clock: Clock, projector: Projector, wake: Callable[[], None]
    ) -> None:
        self.log = log
        self.clock = clock
        self.projector = projector
        self.wake = wake  # the relay: a group opened is published at once

    async def apply(self, conn: Conn, envelope: Envelope, event: Event) -> None:
        if not (
            isinstance(event, ScanRejected)
            and event.reason == Reason.GROUP_FULL
            and event.live_code_id is not None
            and event.groups_seen
        ):
            return
        uow = UnitOfWork(conn, self.clock(), self.log, self.projector)
        if await open_next_group(uow, event.live_code_id, event.groups_seen):
            await uow.flush()
            self.wake()
