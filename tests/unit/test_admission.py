"""The hot paths' gate: bounded, and fair between tenants."""

from __future__ import annotations

import asyncio

from shared.http.admission import FairGate


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


async def test_a_class_holds_at_most_its_share_while_others_wait() -> None:
    gate = FairGate(limit=4, share=0.75)  # a class may hold 3 of the 4 slots
    for _ in range(3):
        await gate.acquire("a")
    flood = [asyncio.create_task(gate.acquire("a")) for _ in range(5)]
    await _settle()
    assert not any(t.done() for t in flood) and gate.held("a") == 3
    await asyncio.wait_for(gate.acquire("b"), 1)  # the slot a may not take is b's
    assert gate.stats.in_use == 4
    for task in flood:
        task.cancel()
    await asyncio.gather(*flood, return_exceptions=True)
    assert gate.stats.waiting == 0


async def test_a_slot_set_free_goes_to_the_classes_waiting_in_turn() -> None:
    gate = FairGate(limit=2, share=1.0)
    await gate.acquire("a")
    await gate.acquire("a")
    order: list[str] = []

    async def wait(cls: str) -> None:
        await gate.acquire(cls)
        order.append(cls)

    # tenant a queued ten before b's one: b must not wait for all ten
    waiters = [asyncio.create_task(wait("a")) for _ in range(10)]
    await _settle()
    waiters.append(asyncio.create_task(wait("b")))
    await _settle()
    gate.release("a")
    await _settle()
    gate.release("a")
    await _settle()
    assert order == ["a", "b"]
    for task in waiters:
        task.cancel()
    await asyncio.gather(*waiters, return_exceptions=True)


async def test_a_waiter_cancelled_as_it_is_granted_passes_the_slot_on() -> None:
    gate = FairGate(limit=1, share=1.0)
    await gate.acquire("a")
    first = asyncio.create_task(gate.acquire("b"))
    second = asyncio.create_task(gate.acquire("c"))
    await _settle()
    gate.release("a")  # granted to b ...
    first.cancel()  # ... which is cancelled before it runs
    await asyncio.gather(first, return_exceptions=True)
    await asyncio.wait_for(second, 1)
    assert gate.held("c") == 1 and gate.stats.in_use == 1
