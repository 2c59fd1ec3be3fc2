"""The API-key lookups a service keeps for a second, and what a local revocation drops."""

from __future__ import annotations

import asyncio
import uuid

from shared.http.auth import CachedKeys, Principal

KEY = Principal(uuid.uuid4(), uuid.uuid4(), frozenset({"issue"}))


class Table:
    """Stands in for the api_keys table: what a lookup finds, and how often it was asked."""

    def __init__(self) -> None:
        self.rows: dict[str, Principal] = {"h": KEY}
        self.asked = 0
        self.hold: asyncio.Event | None = None

    async def __call__(self, key_hash: str) -> Principal | None:
        self.asked += 1
        found = self.rows.get(key_hash)
        if self.hold is not None:
            await self.hold.wait()
        return found


async def test_a_found_key_is_kept_and_an_unknown_one_is_not() -> None:
    table = Table()
    keys = CachedKeys(table, ttl=60)
    assert await keys("h") == KEY
    assert await keys("h") == KEY
    assert await keys("nope") is None
    assert await keys("nope") is None
    assert table.asked == 3


async def test_forget_makes_the_next_request_ask_again() -> None:
    table = Table()
    keys = CachedKeys(table, ttl=60)
    await keys("h")
    del table.rows["h"]  # revoked
    keys.forget()
    assert await keys("h") is None
    assert table.asked == 2


async def test_a_lookup_under_way_when_a_key_is_revoked_is_not_kept() -> None:
    table = Table()
    keys = CachedKeys(table, ttl=60)
    table.hold = asyncio.Event()
    stale = asyncio.create_task(keys("h"))  # reads the row before the revocation commits
    async with asyncio.timeout(5):
        while table.asked == 0:
            await asyncio.sleep(0)
    del table.rows["h"]
    keys.forget()
    table.hold.set()
    assert await stale == KEY  # that request was already in
    table.hold = None
    assert await keys("h") is None  # but its answer was not kept for the next
