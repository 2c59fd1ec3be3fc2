"""The event base type, its registry by name, and schema evolution by upcasting.

An event's `data` is its struct encoded as JSON with sorted keys. Old events are never
edited: a reader meets an event of an older `schema` and lifts it with the registered
`upcast_vN_vN+1` functions before decoding it as today's type.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any, ClassVar, TypeVar

import msgspec


class Event(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=False):
    """A fact that happened; subclasses are named in the past tense."""

    SCHEMA: ClassVar[int] = 1

    @classmethod
    def type_name(cls) -> str:
        return cls.__name__


class UnknownEventType(LookupError):
    """An event type this build does not know (written by a newer producer)."""


E = TypeVar("E", bound=type[Event])
Upcaster = Callable[[dict[str, Any]], dict[str, Any]]

_TYPES: dict[str, type[Event]] = {}
_UPCASTERS: dict[tuple[str, int], Upcaster] = {}


def event_type(cls: E) -> E:
    """Register an event type under its class name (the envelope's `type`)."""
    name = cls.type_name()
    if name in _TYPES and _TYPES[name] is not cls:
        raise ValueError(f"event type {name} registered twice")
    _TYPES[name] = cls
    return cls


def upcaster(type_name: str, from_schema: int) -> Callable[[Upcaster], Upcaster]:
    """Register the function that lifts `type_name` data from `from_schema` to the next one."""

    def register(fn: Upcaster) -> Upcaster:
        _UPCASTERS[(type_name, from_schema)] = fn
        return fn

    return register


def registered_types() -> dict[str, type[Event]]:
    return dict(_TYPES)


_encoder = msgspec.json.Encoder(order="sorted")


def encode_data(event: Event) -> bytes:
    """The canonical bytes of an event's data: JSON with every key sorted."""
    return _encoder.encode(event)


@cache
def _decoder(cls: type[Event]) -> msgspec.json.Decoder[Event]:
    return msgspec.json.Decoder(cls)


def decode_data(type_name: str, schema: int, data: bytes) -> Event:
    cls = _TYPES.get(type_name)
    if cls is None:
        raise UnknownEventType(type_name)
    if schema == cls.SCHEMA:
        return _decoder(cls).decode(data)
    if schema > cls.SCHEMA:
        raise UnknownEventType(f"{type_name} schema {schema} is newer than this build knows")
    fields: dict[str, Any] = msgspec.json.decode(data)
    for version in range(schema, cls.SCHEMA):
        lift = _UPCASTERS.get((type_name, version))
        if lift is None:
            raise UnknownEventType(f"no upcaster for {type_name} schema {version}")
        fields = lift(fields)
    return msgspec.convert(fields, cls)
