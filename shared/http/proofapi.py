"""`GET /v1/log/proof` and `GET /v1/log/consistency`: RFC 9162 proofs against checkpoints.

An auditor who holds a checkpoint (a signed tree head) checks with an inclusion proof that
an event is in the log it signed, and with a consistency proof that a later checkpoint's
log only grew from it. Both answers carry the checkpoints as published (canonical bytes
spliced verbatim) so their signatures can be checked against /.well-known/jwks.json.
"""

from __future__ import annotations

import math
import re
import uuid
from typing import Annotated, Any

import msgspec
from aiohttp import web
from msgspec import Meta

from shared.audit.merkle import leaf_hash
from shared.db import RequestPool
from shared.dbtypes import Conn
from shared.http.auth import AUDIT_SCOPE
from shared.http.endpoints import Api
from shared.http.json import json_response
from shared.http.problems import Problem
from shared.store.eventstore import LogSpec
from shared.store.proofs import (
    StoredCheckpoint,
    checkpoint_by_id,
    checkpoint_by_size,
    consistency_path,
    inclusion_path,
    latest_checkpoint,
    sealed_event,
)

_TREE_SIZE = re.compile(r"[0-9]{1,18}")


class ProofQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    event_id: uuid.UUID
    # Prove against this checkpoint's tree (its size) instead of the latest one.
    tree_size: Annotated[int, Meta(ge=1)] | None = None


class ConsistencyQuery(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    # Each end is a checkpoint: its event id, or its tree size within `partition`.
    first: str = msgspec.field(name="from")
    second: str | None = msgspec.field(name="to", default=None)
    partition: Annotated[int, Meta(ge=0, le=255)] | None = None


class SignedCheckpoint(msgspec.Struct):
    """A checkpoint as published: its place in the chain and the tree head it signs"""

    event_id: uuid.UUID
    position: int
    hash: str
    tree_size: int
    tree_root: str
    key_id: str
    event: Any  # the canonical envelope, spliced raw: `data.signature` is checkable


class InclusionProof(msgspec.Struct):
    """An event, its leaf, and the audit path to a checkpoint's tree head (RFC 9162 §2.1.3)"""

    log: str
    partition: int
    position: int
    leaf_index: int
    hash: str
    leaf_hash: str
    event: Any
    checkpoint: SignedCheckpoint
    audit_path: list[str]


class ConsistencyProof(msgspec.Struct):
    """Proof that the first checkpoint's tree is a prefix of the second's (RFC 9162 §2.1.4)"""

    log: str
    partition: int
    first: SignedCheckpoint
    second: SignedCheckpoint
    proof: list[str]


class PartitionHead(msgspec.Struct):
    partition: int
    sealed_position: int
    published_position: int  # what Kafka holds at least: the relay's acknowledged mark
    checkpoint: SignedCheckpoint | None  # the latest


class LogHeads(msgspec.Struct):
    """How far each partition is sealed and published, and its latest checkpoint"""

    log: str
    partitions: list[PartitionHead]


def _signed(cp: StoredCheckpoint) -> SignedCheckpoint:
    return SignedCheckpoint(
        cp.event_id,
        cp.position,
        cp.hash.hex(),
        cp.event.tree_size,
        cp.event.tree_root,
        cp.event.key_id,
        msgspec.Raw(cp.body),
    )


def register_proofs(
    api: Api, pool_key: web.AppKey[RequestPool], log_spec: LogSpec, checkpoint_seconds: float
) -> None:
    retry = {"Retry-After": str(max(1, math.ceil(checkpoint_seconds)))}

    @api.route(
        "GET",
        "/v1/log/proof",
        summary="Prove an event is in the log",
        scope=AUDIT_SCOPE,
        tags=["log"],
        query=ProofQuery,
        responses={200: InclusionProof},
        errors=["not_found", "not_checkpointed"],
    )
    async def log_proof(
        request: web.Request, tenant_id: uuid.UUID | None, query: ProofQuery
    ) -> web.Response:
        """An `audit` key proves its own tenant's events; the log token any event. The proof
        is against the latest checkpoint of the event's partition, or the one of
        `tree_size`. An event sealed after the latest checkpoint is `not_checkpointed` for at
        most QUNMA_CHECKPOINT_SECONDS."""
        async with request.app[pool_key].acquire() as conn:
            event = await sealed_event(conn, query.event_id)
            if event is None or (tenant_id is not None and event.tenant_id != tenant_id):
                raise Problem("not_found", f"no sealed event {query.event_id} in {log_spec.name}")
            if query.tree_size is None:
                cp = await latest_checkpoint(conn, event.partition)
            else:
                cp = await _by_size(conn, event.partition, query.tree_size)
            if cp is None or cp.event.tree_size < event.position:
                raise Problem(
                    "not_checkpointed",
                    f"{log_spec.name}[{event.partition}] position {event.position} is not "
                    "covered by " + ("a checkpoint yet" if query.tree_size is None else "it"),
                    headers=retry if query.tree_size is None else None,
                )
            path = await inclusion_path(
                conn, event.partition, event.position - 1, cp.event.tree_size
            )
        return json_response(
            InclusionProof(
                log=log_spec.name,
                partition=event.partition,
                position=event.position,
                leaf_index=event.position - 1,
                hash=event.hash.hex(),
                leaf_hash=leaf_hash(event.hash).hex(),
                event=msgspec.Raw(event.body),
                checkpoint=_signed(cp),
                audit_path=[h.hex() for h in path],
            )
        )

    @api.route(
        "GET",
        "/v1/log/consistency",
        summary="Prove the log only grew between two checkpoints",
        scope=AUDIT_SCOPE,
        tags=["log"],
        query=ConsistencyQuery,
        responses={200: ConsistencyProof},
        errors=["not_found"],
    )
    async def log_consistency(request: web.Request, query: ConsistencyQuery) -> web.Response:
        """`from` and `to` name checkpoints by event id, or by tree size with `partition`;
        `to` defaults to the partition's latest checkpoint. The proof holds no tenant's
        data (hashes only), so any `audit` key may ask."""
        async with request.app[pool_key].acquire() as conn:
            first = await _checkpoint_ref(conn, query.first, query.partition, "from")
            if query.second is None:
                second = await latest_checkpoint(conn, first.partition)
                assert second is not None  # `first` is one
            else:
                second = await _checkpoint_ref(conn, query.second, first.partition, "to")
            if second.partition != first.partition:
                raise Problem("invalid_request", "from and to are in different partitions")
            if second.event.tree_size < first.event.tree_size:
                raise Problem("invalid_request", "to must not be an older checkpoint than from")
            proof = await consistency_path(
                conn, first.partition, first.event.tree_size, second.event.tree_size
            )
        return json_response(
            ConsistencyProof(
                log=log_spec.name,
                partition=first.partition,
                first=_signed(first),
                second=_signed(second),
                proof=[h.hex() for h in proof],
            )
        )

    @api.route(
        "GET",
        "/v1/log/heads",
        summary="The log's heads and latest checkpoints",
        scope=AUDIT_SCOPE,
        tags=["log"],
        responses={200: LogHeads},
    )
    async def log_heads(request: web.Request) -> web.Response:
        """An auditor reading the topic compares its end with `published_position`, read
        before the topic: a log that ends earlier was truncated."""
        async with request.app[pool_key].acquire() as conn:
            rows = await conn.fetch(
                "SELECT partition, sealed_position, published_position FROM log_partitions "
                "ORDER BY partition"
            )
            heads = [
                PartitionHead(
                    r["partition"],
                    r["sealed_position"],
                    r["published_position"],
                    None if cp is None else _signed(cp),
                )
                for r in rows
                for cp in [await latest_checkpoint(conn, r["partition"])]
            ]
        return json_response(LogHeads(log_spec.name, heads))

    async def _by_size(conn: Conn, partition: int, size: int) -> StoredCheckpoint:
        if partition >= log_spec.partitions:
            raise Problem("invalid_request", f"partition must be below {log_spec.partitions}")
        cp = await checkpoint_by_size(conn, partition, size)
        if cp is None:
            raise Problem(
                "not_found", f"no checkpoint of tree size {size} in {log_spec.name}[{partition}]"
            )
        return cp

    async def _checkpoint_ref(
        conn: Conn, ref: str, partition: int | None, name: str
    ) -> StoredCheckpoint:
        try:
            event_id = uuid.UUID(ref)
        except ValueError:
            pass
        else:
            cp = await checkpoint_by_id(conn, event_id)
            if cp is None:
                raise Problem("not_found", f"no checkpoint {event_id} in {log_spec.name}")
            if partition is not None and cp.partition != partition:
                raise Problem("invalid_request", f"{name} is not in partition {partition}")
            return cp
        # ASCII digits only, and few enough of them: str.isdigit() also takes "²", which
        # int() refuses, and int() refuses 5,000 digits.
        if not _TREE_SIZE.fullmatch(ref) or int(ref) < 1:
            raise Problem("invalid_request", f"{name} must be a checkpoint's event id or tree size")
        if partition is None:
            raise Problem("invalid_request", f"{name} is a tree size: say which partition")
        return await _by_size(conn, partition, int(ref))
