"""The envelope every event travels in, and its canonical bytes.

Canonical bytes = the envelope without `hash`, as JSON with sorted keys. These bytes are
the Kafka record value, the bytes the hash chain covers, and what `GET /v1/log` returns,
so any reader can recompute every hash without trusting anyone's database.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec

from shared.events.base import Event, decode_data


class Envelope(msgspec.Struct, frozen=True, kw_only=True, omit_defaults=True):
    event_id: uuid.UUID
    type: str
    schema: int
    tenant_id: uuid.UUID | None
    stream_id: str
    stream_version: int
    occurred_at: datetime
    # Already canonical (sorted) JSON; kept raw so that encoding splices it verbatim.
    data: msgspec.Raw
    # Sealed by the relay:
    log: str
    partition: int
    position: int
    prev_hash: str
    # Who caused it (shared/store/actor.py). Absent, not null, when unknown: events sealed
    # before it existed keep their bytes.
    actor: str | None = None

    def event(self) -> Event:
        return decode_data(self.type, self.schema, bytes(self.data))


class SealedEvent(msgspec.Struct, frozen=True):
    """An envelope with its canonical bytes and the chain hash over them."""

    envelope: Envelope
    body: bytes
    hash: bytes


_encoder = msgspec.json.Encoder(order="sorted")
_decoder = msgspec.json.Decoder(Envelope)


def canonical_bytes(envelope: Envelope) -> bytes:
    return _encoder.encode(envelope)


def decode_envelope(body: bytes) -> Envelope:
    return _decoder.decode(body)
