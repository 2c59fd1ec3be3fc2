"""What checking a log finds, and what it leaves to check once every key is known: the
kinds of finding (shared/audit/verify.py says what each means), checkpoint signatures still
to verify, and log keys announced in the log.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import msgspec

from shared.crypto.signing import unb64url, verify
from shared.events.log import LogKeyAdded

EDITED, DROPPED, REORDERED = "edited", "dropped", "reordered"
DUPLICATED, FORGED, TRUNCATED = "duplicated", "forged checkpoint", "truncated"
KINDS = (EDITED, DROPPED, REORDERED, DUPLICATED, FORGED, TRUNCATED)


class Finding(msgspec.Struct, frozen=True):
    log: str
    partition: int
    position: int
    kind: str
    detail: str
    where: str | None = None  # "offset 17" in a topic, "line 18" in an export


@dataclass(frozen=True)
class CheckpointClaim:
    """A checkpoint whose signature is still to be checked."""

    log: str
    partition: int
    position: int
    key_id: str
    signature: str
    message: bytes


@dataclass(frozen=True)
class KeyClaim:
    log: str
    partition: int
    position: int
    stream_id: str
    key: LogKeyAdded


# A record as a source hands it over: its bytes, where it was found (a Kafka offset or an
# export's line number), and the hash sent with it, if any.
Item = tuple[bytes, int, bytes | None]


# Verifies (key_id, signature, message) for a log; None when its keys are not known yet.
SignatureCheck = Callable[[str, str, bytes], bool]


def forged_detail(key_id: str) -> str:
    return f"its signature does not verify with a log key this log trusts (key {key_id})"


def signature_ok(public_b64: str, signature: str, message: bytes) -> bool:
    try:
        raw = unb64url(signature)
    except ValueError:
        return False
    return verify(public_b64, raw, message)
