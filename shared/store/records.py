"""A Kafka record as an item the follower can judge (shared/store/origin.py), or nothing:
one that does not decode, claims another log or partition, or whose bytes do not give the
hash its header names cannot be the producer's, and the log API fills its place.
"""

from __future__ import annotations

import logging
from typing import Any

import msgspec

from shared.events.envelope import decode_envelope
from shared.store.origin import Item, item_of

log = logging.getLogger(__name__)


def record_item(log_name: str, partition: int, message: Any) -> Item | None:
    """A record as an Item, or None (logged) if it cannot be the producer's: it does
    not decode, claims another partition, or its bytes do not give its hash header."""
    value: bytes = message.value
    offset: int = message.offset
    headers: dict[str, bytes] = dict(message.headers or ())
    try:
        envelope = decode_envelope(value)
    except msgspec.DecodeError:
        log.error(
            "%s[%d]: the record at offset %d does not decode; the log API will fill its place",
            log_name,
            partition,
            offset,
        )
        return None
    if envelope.log != log_name or envelope.partition != partition:
        log.error(
            "%s[%d]: the record at offset %d claims to be %s[%d]; ignored",
            log_name,
            partition,
            offset,
            envelope.log,
            envelope.partition,
        )
        return None
    item = item_of(envelope, value, offset, headers)
    claimed = headers.get("hash")
    if claimed is None or claimed != item.digest.hex().encode():
        log.error(
            "%s[%d]: position %d at offset %d does not match its hash (damaged on the way); "
            "the log API will fill its place",
            log_name,
            partition,
            envelope.position,
            offset,
        )
        return None
    return item
