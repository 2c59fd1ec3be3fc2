"""The SQL side of the shared rules says what the Python side says, on every combination:
`qunma_code_status` against shared/rules/code_status.py, on a real database."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import asyncpg

from shared.rules.code_status import status
from shared.store import migrate
from tests.support.infra import Infra

NOW = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
TIMES = [None, NOW - timedelta(seconds=1), NOW, NOW + timedelta(seconds=1)]


async def test_code_status_in_sql_is_the_python_rule(infra: Infra) -> None:
    cases = list(itertools.product([False, True], [False, True], TIMES, TIMES))
    async with infra.database() as dsn:
        conn = await asyncpg.connect(dsn)
        try:
            await migrate.apply(conn, migrate.store_migrations(), migrate.store_functions())
            rows = await conn.fetch(
                "SELECT qunma_code_status(r, s, nb, ex, $5) FROM "
                "unnest($1::bool[], $2::bool[], $3::timestamptz[], $4::timestamptz[]) "
                "WITH ORDINALITY AS c(r, s, nb, ex, i) ORDER BY i",
                [c[0] for c in cases],
                [c[1] for c in cases],
                [c[2] for c in cases],
                [c[3] for c in cases],
                NOW,
            )
        finally:
            await conn.close()
    in_sql = [r[0] for r in rows]
    in_python = [
        status(revoked=r, superseded=s, not_before=nb, expires_at=ex, now=NOW)
        for r, s, nb, ex in cases
    ]
    assert len(in_sql) == len(cases) == 64
    assert in_sql == in_python
