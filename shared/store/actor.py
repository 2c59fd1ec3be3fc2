"""Who caused an event: recorded as the envelope's `actor`.

`key:<api key id>` for a request made with a tenant's API key, `log-token` for the
deployment's log token, `landing` for the landing page (a person, no key), `system:<part>`
for work a service does by itself (the sweeper, retention, the relay's checkpoints), and
`cli:<command>` for an operator's command. A context variable carries it from the request
or the task to the unit of work that records the events, so no command has to pass it on.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar

ACTOR: ContextVar[str | None] = ContextVar("qunma_actor", default=None)


@contextmanager
def acting_as(actor: str) -> Iterator[None]:
    token = ACTOR.set(actor)
    try:
        yield
    finally:
        ACTOR.reset(token)
