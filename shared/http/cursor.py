"""Opaque pagination cursors: the sort key of the last item, as base64url JSON."""

from __future__ import annotations

import base64
import binascii
from typing import TypeVar

import msgspec

from shared.http.problems import Problem

C = TypeVar("C", bound=msgspec.Struct)


def encode_cursor(position: msgspec.Struct) -> str:
    return base64.urlsafe_b64encode(msgspec.json.encode(position)).decode().rstrip("=")


def decode_cursor(text: str, type_: type[C]) -> C:
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
        return msgspec.json.decode(raw, type=type_)
    except (binascii.Error, ValueError, msgspec.DecodeError):
        raise Problem("invalid_request", "cursor is not one this API handed out") from None
