"""Fixing a log's shape in its database at start."""

from __future__ import annotations

from shared.dbtypes import Conn
from shared.store.eventstore import LogSpec


class LogShapeChanged(RuntimeError):
    pass


async def ensure_log(conn: Conn, log: LogSpec) -> None:
    """Record the log's name and partition count once; refuse to start with other ones.

    Events are routed to partitions by `key` at insert time, so the count must not change
    under a store that already holds events.
    """
    async with conn.transaction():
        await conn.execute(
            "INSERT INTO log_settings (log, partitions) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            log.name,
            log.partitions,
        )
        row = await conn.fetchrow("SELECT log, partitions FROM log_settings")
        assert row is not None
        if (row["log"], row["partitions"]) != (log.name, log.partitions):
            raise LogShapeChanged(
                f"this database holds log {row['log']!r} with {row['partitions']} partitions; "
                f"the configuration says {log.name!r} with {log.partitions}"
            )
        await conn.execute(
            "INSERT INTO log_partitions (partition) SELECT generate_series(0, $1 - 1) "
            "ON CONFLICT DO NOTHING",
            log.partitions,
        )
