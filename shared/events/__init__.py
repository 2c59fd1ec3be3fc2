"""Typed, immutable events: the base type, the envelope that carries them, and the codec."""

# Importing the package registers every vocabulary, so no reader can meet a known type
# it has not registered (and mistake it for one a newer producer wrote).
from shared.events import issuer, log, redeemer  # noqa: F401
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
