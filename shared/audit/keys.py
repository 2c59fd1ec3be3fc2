"""Which keys a log's checkpoints may be signed with.

Pinned keys come from outside the log: the services' /.well-known/jwks.json (log keys
carry a `log` member naming their log) or a JWKS file an auditor kept. Without a pin, the
log's first `LogKeyAdded` is trusted on first use and every later key must be endorsed by
a key already trusted; a key slipped into the log by someone else is then never trusted,
and every checkpoint it signs is reported as forged.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.audit.findings import (
    FORGED,
    CheckpointClaim,
    Finding,
    KeyClaim,
    SignatureCheck,
    forged_detail,
    signature_ok,
)
from shared.events.log import LOG_KEYS_STREAM, key_message
from shared.store.eventstore import LogSpec

# log name -> key id -> public key (base64url)
Pins = dict[str, dict[str, str]]


def pins_from_jwks(document: Mapping[str, Any]) -> Pins:
    pins: Pins = {}
    for key in document.get("keys", []):
        if key.get("kty") == "OKP" and key.get("crv") == "Ed25519" and key.get("log"):
            pins.setdefault(key["log"], {})[key["kid"]] = key["x"]
    return pins


def merge(into: Pins, more: Pins) -> Pins:
    for log, keys in more.items():
        into.setdefault(log, {}).update(keys)
    return into


def pinned_check(pins: Pins, log: str) -> SignatureCheck | None:
    """A signature check for `log` from its pinned keys; None when none are pinned."""
    keys = pins.get(log)
    if not keys:
        return None

    def check(key_id: str, signature: str, message: bytes) -> bool:
        public = keys.get(key_id)
        return public is not None and signature_ok(public, signature, message)

    return check


@dataclass
class Trust:
    """Decides the keys of each log from pins or the log's own key events, then checks
    the checkpoints that were left for it."""

    pins: Pins = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def keys_of(self, log: str, partitions: int, announced: list[KeyClaim]) -> dict[str, str]:
        # Key events are written to one stream, so one partition: anywhere else they are
        # not the producer's, and ordering across partitions would mean nothing anyway.
        home = LogSpec(log, partitions).partition_for(LOG_KEYS_STREAM)
        for claim in announced:
            if (claim.partition, claim.stream_id) != (home, LOG_KEYS_STREAM):
                self.notes.append(
                    f"{log}[{claim.partition}] position {claim.position}: a LogKeyAdded "
                    f"outside the {LOG_KEYS_STREAM!r} stream in partition {home} is ignored"
                )
        announced = [c for c in announced if (c.partition, c.stream_id) == (home, LOG_KEYS_STREAM)]
        if self.pins.get(log):
            trusted = dict(self.pins[log])
            for claim in announced:
                if trusted.get(claim.key.key_id) != claim.key.public_key:
                    self.notes.append(
                        f"{log}[{claim.partition}] position {claim.position}: key "
                        f"{claim.key.key_id} is announced in the log but not pinned"
                    )
            return trusted
        trusted = {}
        for claim in sorted(announced, key=lambda c: c.position):
            key = claim.key
            if not trusted:
                trusted[key.key_id] = key.public_key
                self.notes.append(
                    f"{log}: key {key.key_id} trusted on first use (pin keys with --jwks)"
                )
                continue
            endorser = trusted.get(key.endorsed_by or "")
            if (
                endorser is not None
                and key.endorsement is not None
                and signature_ok(
                    endorser,
                    key.endorsement,
                    key_message(log, key.service, key.key_id, key.public_key),
                )
            ):
                trusted[key.key_id] = key.public_key
            else:
                self.notes.append(
                    f"{log}[{claim.partition}] position {claim.position}: key {key.key_id} "
                    "is not endorsed by a trusted key; nothing it signs is trusted"
                )
        return trusted

    def check_claims(
        self, log: str, partitions: int, claims: list[CheckpointClaim], announced: list[KeyClaim]
    ) -> dict[int, Finding]:
        """The first forged checkpoint of each partition, if any."""
        keys = self.keys_of(log, partitions, announced)
        first: dict[int, Finding] = {}
        for claim in sorted(claims, key=lambda c: (c.partition, c.position)):
            if claim.partition in first:
                continue
            public = keys.get(claim.key_id)
            if public is None or not signature_ok(public, claim.signature, claim.message):
                first[claim.partition] = Finding(
                    log, claim.partition, claim.position, FORGED, forged_detail(claim.key_id)
                )
        return first
