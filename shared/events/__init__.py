"""Typed, immutable events: the base type, the envelope that carries them, and the codec."""

from shared.events.base import Event, UnknownEventType, decode_data, encode_data, event_type
from shared.events.envelope import Envelope, SealedEvent, canonical_bytes

__all__ = [
    "Envelope",
    "Event",
    "SealedEvent",
    "UnknownEventType",
    "canonical_bytes",
    "decode_data",
    "encode_data",
    "event_type",
]
