"""A request transaction on the real database: every acquire of the task is one
transaction, a failed statement undoes only its own savepoint, and what waits for the
commit runs only after it."""

from __future__ import annotations

import asyncpg
import pytest

from shared.db import after_commit, create_pool
from tests.support.infra import Infra


async def test_acquires_share_one_transaction_and_commit_together(infra: Infra) -> None:
    async with infra.database() as dsn:
        pool = await create_pool(dsn, min_size=1, max_size=3)
        try:
            await pool.execute("CREATE TABLE t (v int PRIMARY KEY)")
            committed: list[str] = []
            async with pool.request_transaction():
                async with pool.acquire() as conn:
                    await conn.execute("INSERT INTO t VALUES (1)")
                    after_commit(lambda: committed.append("one"))
                with pytest.raises(asyncpg.UniqueViolationError):
                    async with pool.acquire() as conn:
                        await conn.execute("INSERT INTO t VALUES (1)")
                # the failed statement undid its savepoint only: the transaction goes on
                async with pool.acquire() as conn:
                    await conn.execute("INSERT INTO t VALUES (2)")
                async with pool.own() as other:  # another session sees nothing yet
                    assert await other.fetchval("SELECT count(*) FROM t") == 0
                assert committed == []
            assert committed == ["one"]
            assert await pool.fetchval("SELECT array_agg(v ORDER BY v) FROM t") == [1, 2]
        finally:
            await pool.close()


async def test_a_raised_request_leaves_nothing(infra: Infra) -> None:
    async with infra.database() as dsn:
        pool = await create_pool(dsn, min_size=1, max_size=2)
        try:
            await pool.execute("CREATE TABLE t (v int)")
            committed: list[str] = []

            async def failing_request() -> None:
                async with pool.request_transaction():
                    await pool.execute("INSERT INTO t VALUES (1)")
                    after_commit(lambda: committed.append("never"))
                    raise RuntimeError("the handler failed")

            with pytest.raises(RuntimeError):
                await failing_request()
            assert committed == []
            assert await pool.fetchval("SELECT count(*) FROM t") == 0
            after_commit(lambda: committed.append("now"))  # outside: at once
            assert committed == ["now"]
        finally:
            await pool.close()
