"""`GET /v1/log`: the sealed events of one partition, exactly as published.

Consumers fill gaps from here; auditors can read it too. Each item carries the position,
the chain hash and the event's canonical bytes spliced verbatim, so re-encoding the
`event` object with sorted keys gives back the bytes the hash covers.
"""

from __future__ import annotations

import asyncpg
import msgspec
from aiohttp import web
from aiohttp.typedefs import Handler

from shared.http.auth import LOG_SCOPE, principal
from shared.http.json import query_int
from shared.http.problems import Problem
from shared.store.eventstore import LogSpec


class LogItem(msgspec.Struct):
    position: int
    hash: str
    event: msgspec.Raw


class LogHead(msgspec.Struct):
    position: int
    hash: str


class LogPageOut(msgspec.Struct):
    log: str
    partition: int
    after: int
    head: LogHead
    events: list[LogItem]


_encoder = msgspec.json.Encoder()


def log_handler(pool_key: web.AppKey[asyncpg.Pool], log_spec: LogSpec) -> Handler:
    async def read_log(request: web.Request) -> web.Response:
        if LOG_SCOPE not in principal(request).scopes:
            raise Problem("forbidden", "reading the whole log needs the deployment's log token")
        partition = query_int(request, "partition", 0, lo=0, hi=log_spec.partitions - 1)
        after = query_int(request, "after", 0, lo=0, hi=2**62)
        limit = query_int(request, "limit", 500, lo=1, hi=1000)
        pool = request.app[pool_key]
        async with pool.acquire() as conn:
            head = await conn.fetchrow(
                "SELECT sealed_position, sealed_hash FROM log_partitions WHERE partition = $1",
                partition,
            )
            rows = await conn.fetch(
                "SELECT position, hash, body FROM events WHERE partition = $1 AND position > $2 "
                "ORDER BY position LIMIT $3",
                partition,
                after,
                limit,
            )
        page = LogPageOut(
            log=log_spec.name,
            partition=partition,
            after=after,
            head=LogHead(head["sealed_position"], bytes(head["sealed_hash"]).hex())
            if head
            else LogHead(0, bytes(32).hex()),
            events=[
                LogItem(r["position"], bytes(r["hash"]).hex(), msgspec.Raw(r["body"])) for r in rows
            ],
        )
        return web.Response(body=_encoder.encode(page), content_type="application/json")

    return read_log
