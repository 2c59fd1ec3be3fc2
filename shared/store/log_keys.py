"""The log key: the Ed25519 key a service signs its log's checkpoints with.

Made on the first start of the first replica to lead the relay, announced in the log by a
`LogKeyAdded` event in the same transaction, and kept only sealed under the KEK. The
public half is also served in the service's /.well-known/jwks.json, so an auditor can pin
it outside the log.
"""

from __future__ import annotations

import zlib
from datetime import datetime

from shared.crypto.kek import Kek
from shared.crypto.signing import ALGORITHM, SigningKey
from shared.dbtypes import Conn
from shared.events.log import LOG_KEYS_STREAM, LogKeyAdded
from shared.store.eventstore import LogSpec, Pending, append


def _lock_key(log_name: str) -> int:
    return zlib.crc32(f"qunma.log-key:{log_name}".encode())


async def ensure_log_key(
    conn: Conn, log: LogSpec, kek: Kek, service: str, now: datetime
) -> SigningKey:
    """The active log key, made and announced if this log has none yet."""
    async with conn.transaction():
        # Two replicas starting at once must not both make a first key.
        await conn.execute("SELECT pg_advisory_xact_lock($1)", _lock_key(log.name))
        row = await conn.fetchrow("SELECT key_id, sealed FROM log_keys WHERE active")
        if row is not None:
            return SigningKey.open(row["key_id"], bytes(row["sealed"]), kek)
        key = SigningKey.generate()
        announced = await conn.fetchval(
            "SELECT count(*) FROM events WHERE stream_id = $1", LOG_KEYS_STREAM
        )
        event = LogKeyAdded(
            key_id=key.key_id, service=service, algorithm=ALGORITHM, public_key=key.public_b64
        )
        await append(
            conn,
            log,
            [Pending(event, LOG_KEYS_STREAM, announced + 1, None, LOG_KEYS_STREAM)],
            now,
        )
        await conn.execute(
            "INSERT INTO log_keys (key_id, public_key, sealed) VALUES ($1, $2, $3)",
            key.key_id,
            key.public_b64,
            key.seal(kek),
        )
        return key


async def public_log_keys(conn: Conn) -> list[tuple[str, str]]:
    """(key_id, public key) of every log key this log was ever signed with, oldest first."""
    rows = await conn.fetch("SELECT key_id, public_key FROM log_keys ORDER BY created_at, key_id")
    return [(r["key_id"], r["public_key"]) for r in rows]
