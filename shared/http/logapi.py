"""`GET /v1/log`: the sealed events of one partition, exactly as published.

Consumers fill gaps from here; auditors can read it too. Each item carries the position,
the chain hash and the event's canonical bytes spliced verbatim, so re-encoding the
`event` object with sorted keys gives back the bytes the hash covers.
"""

from __future__ import annotations

from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from shared.db import RequestPool
from shared.http.auth import LOG_SCOPE
from shared.http.endpoints import Api
from shared.http.problems import Problem
from shared.store.eventstore import LogSpec


class LogQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    partition: Annotated[int, Meta(ge=0, le=255)] = 0
    after: Annotated[int, Meta(ge=0)] = 0
    limit: Annotated[int, Meta(ge=1, le=1000)] = 500


class LogItem(msgspec.Struct):
    position: int
    hash: str
    event: Any  # the canonical envelope, spliced raw


class LogHead(msgspec.Struct):
    position: int
    hash: str


class LogPage(msgspec.Struct):
    """Sealed events after `after`, oldest first, and the partition's head"""

    log: str
    partition: int
    after: int
    head: LogHead
    events: list[LogItem]


_encoder = msgspec.json.Encoder()


def register_log(api: Api, pool_key: web.AppKey[RequestPool], log_spec: LogSpec) -> None:
    @api.route(
        "GET",
        "/v1/log",
        summary="Read the log",
        scope=LOG_SCOPE,
        tags=["log"],
        query=LogQuery,
        responses={200: LogPage},
    )
    async def read_log(request: web.Request, query: LogQuery) -> web.Response:
        """Needs the deployment's log token: the log holds every tenant's events."""
        if query.partition >= log_spec.partitions:
            raise Problem(
                "invalid_request",
                f"partition must be below {log_spec.partitions} for {log_spec.name}",
            )
        async with request.app[pool_key].acquire() as conn:
            head = await conn.fetchrow(
                "SELECT sealed_position, sealed_hash FROM log_partitions WHERE partition = $1",
                query.partition,
            )
            rows = await conn.fetch(
                "SELECT position, hash, body FROM events WHERE partition = $1 AND position > $2 "
                "ORDER BY position LIMIT $3",
                query.partition,
                query.after,
                query.limit,
            )
        page = LogPage(
            log=log_spec.name,
            partition=query.partition,
            after=query.after,
            head=LogHead(head["sealed_position"], bytes(head["sealed_hash"]).hex())
            if head
            else LogHead(0, bytes(32).hex()),
            events=[
                LogItem(r["position"], bytes(r["hash"]).hex(), msgspec.Raw(r["body"])) for r in rows
            ],
        )
        return web.Response(body=_encoder.encode(page), content_type="application/json")
